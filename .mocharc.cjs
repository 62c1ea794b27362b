// Tests are TypeScript run through tsx; packages are imported from their built dist/ (npm test builds first).
// Which files: `npm run test:unit` (test/unit: fast, fakes, no services) and `npm run test:integration`
// (test/integration: real Redis, processes, gRPC), `npm run test:containers` (test/containers: the images
// built and run with podman); `npx mocha FILE` runs one file.
module.exports = {
  require: ['tsx/cjs'],
  timeout: 60000,
  forbidOnly: true,
  reporter: 'spec',
};
