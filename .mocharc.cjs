// Tests are TypeScript run through tsx; packages are imported from their built dist/ (npm test builds first).
module.exports = {
  require: ['tsx/cjs'],
  spec: ['test/**/*.test.ts'],
  timeout: 60000,
  forbidOnly: true,
  reporter: 'spec',
};
