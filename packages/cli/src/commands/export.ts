import { Command } from 'commander';
import { EXPORT_FORMATS, ExportFormat, exportModel } from '@facenet/core';
import { loadModelForCommand } from '../model-loader';
import { oneOf } from '../parse';
import { Output } from '../output';

interface ExportFlags {
  format: ExportFormat;
  out: string;
  backend?: string;
  json?: boolean;
}

async function runExport(checkpoint: string, flags: ExportFlags): Promise<void> {
  const out = new Output(flags.json ?? false);
  const { model, manifest } = await loadModelForCommand(checkpoint, flags.backend, out);
  try {
    const r = await exportModel(model, manifest, flags.format, flags.out);
    if (flags.json) process.stdout.write(`${JSON.stringify(r)}\n`);
    else {
      out.info(`[facenet] exported ${manifest.model.architecture} (step ${manifest.step}) as ${r.format}: ${r.nodes} layers`);
      for (const f of r.files) out.info(`  ${r.dir}/${f.name}  ${f.bytes.toLocaleString('en-US')} bytes`);
      out.info(
        r.format === 'onnx'
          ? `[facenet] input 'input' [N, ${manifest.model.imageSize}, ${manifest.model.imageSize}, 3] NHWC RGB in [-1, 1]; output 'embeddings'; preprocessing in facenet.json and the model's metadata`
          : `[facenet] tf.loadGraphModel('${r.dir}/model.json'); preprocessing in facenet.json and model.metadata.facenet`,
      );
    }
  } finally {
    model.dispose();
  }
}

export function exportCommand(): Command {
  return new Command('export')
    .description('write a checkpoint as an ONNX model or a TensorFlow.js graph model, for runtimes outside this project')
    .argument('<checkpoint>', 'checkpoint or run folder (the newest step-* is taken)')
    .requiredOption('--format <fmt>', 'onnx or tfjs', oneOf(EXPORT_FORMATS))
    .requiredOption('--out <dir>', 'output folder (replaced if it exists)')
    .option('--backend <name>', 'compute backend used to read the weights')
    .option('--json', 'print the result as JSON')
    .action((checkpoint: string, flags: ExportFlags) => runExport(checkpoint, flags));
}
