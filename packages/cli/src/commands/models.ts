import { Command } from 'commander';
import { ARCHITECTURES, EmbeddingModel, selectBackend, ZOO } from '@facenet/core';
import { Output } from '../output';

export function modelsCommand(): Command {
  return new Command('models')
    .description('list the model zoo with parameter counts')
    .option('--json', 'JSON output', false)
    .action(async (flags: { json: boolean }) => {
      const out = new Output(flags.json);
      await selectBackend({ log: null });
      const rows = ARCHITECTURES.map((name) => {
        const m = new EmbeddingModel({ architecture: name });
        const row = { name, imageSize: m.config.imageSize, parameters: m.parameterCount, summary: ZOO[name].summary };
        m.dispose();
        return row;
      });
      out.data(rows);
      for (const r of rows)
        out.line(
          `${r.name.padEnd(16)} ${String(r.imageSize).padStart(4)} px  ${r.parameters.toLocaleString().padStart(10)} params  ${r.summary}`,
        );
    });
}
