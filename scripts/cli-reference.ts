/** Writes docs/cli.md from the commands' definitions (npm run docs:cli). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderCliReference } from '../packages/cli/dist/cli-reference';

void renderCliReference().then((text) => writeFileSync(join(__dirname, '..', 'docs', 'cli.md'), text));
