import { GraphNode, InferenceGraph } from './inference-graph';

/** A TensorFlow.js graph model: `model.json` and the one weights file it names. */
export interface TfjsGraphModel {
  modelJson: Record<string, unknown>;
  weights: Buffer;
  weightsFile: string;
}

interface TfNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, unknown>;
}

const T = { type: 'DT_FLOAT' };
const str = (s: string) => ({ s: Buffer.from(s).toString('base64') }); // GraphDef JSON: bytes are base64
const list = (v: number[]) => ({ list: { i: v.map(String) } });
const dims = (shape: number[]) => ({ dim: shape.map((d) => ({ size: String(d) })) });

/**
 * Writes the traced graph as a TensorFlow.js graph model (the format tfjs-converter produces from
 * a TensorFlow SavedModel): standard TensorFlow ops, NHWC, input `input` [N, S, S, 3], output
 * `embeddings` [N, D]. `tf.loadGraphModel` loads it in a browser or in Node; `metadata` is in
 * model.json's userDefinedMetadata (`model.metadata` once loaded).
 */
export function writeTfjs(graph: InferenceGraph, metadata: Record<string, unknown>, producerVersion: string): TfjsGraphModel {
  const nodes: TfNode[] = [
    { name: graph.input, op: 'Placeholder', attr: { dtype: T, shape: { shape: dims([-1, graph.imageSize, graph.imageSize, 3]) } } },
  ];
  const weightSpecs: { name: string; shape: number[]; dtype: 'float32' | 'int32' }[] = [];
  const chunks: Buffer[] = [];
  const constant = (name: string, shape: number[], data: Float32Array | Int32Array) => {
    const dtype = data instanceof Float32Array ? 'float32' : 'int32';
    weightSpecs.push({ name, shape, dtype });
    chunks.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    const tfType = { type: dtype === 'float32' ? 'DT_FLOAT' : 'DT_INT32' };
    nodes.push({ name, op: 'Const', attr: { value: { tensor: { dtype: tfType.type, tensorShape: dims(shape) } }, dtype: tfType } });
    return name;
  };
  const op = (name: string, opName: string, input: string[], attr: Record<string, unknown> = {}) => {
    nodes.push({ name, op: opName, input, attr: { T, ...attr } });
    return name;
  };
  const nhwc = { data_format: str('NHWC') };

  const emit = (n: GraphNode) => {
    switch (n.op) {
      case 'conv': {
        const filter = constant(`${n.name}/filter`, n.filterShape, n.filter);
        const bias = constant(`${n.name}/bias`, [n.bias.length], n.bias);
        const conv = op(`${n.name}/conv`, 'Conv2D', [n.input, filter], {
          strides: list([1, n.stride, n.stride, 1]),
          padding: str('SAME'),
          dilations: list([1, 1, 1, 1]),
          ...nhwc,
        });
        const biased = op(n.relu ? `${n.name}/bias_add` : n.name, 'BiasAdd', [conv, bias], nhwc);
        if (n.relu) op(n.name, 'Relu', [biased]);
        return;
      }
      case 'maxPool':
        op(n.name, 'MaxPool', [n.input], {
          ksize: list([1, n.size, n.size, 1]),
          strides: list([1, n.stride, n.stride, 1]),
          padding: str('SAME'),
          ...nhwc,
        });
        return;
      case 'concat': {
        const axis = constant(`${n.name}/axis`, [], new Int32Array([3]));
        op(n.name, 'ConcatV2', [...n.inputs, axis], { N: { i: String(n.inputs.length) }, Tidx: { type: 'DT_INT32' } });
        return;
      }
      case 'addRelu':
        op(n.name, 'Relu', [op(`${n.name}/add`, 'AddV2', n.inputs)]);
        return;
      case 'globalAvgPool': {
        const axes = constant(`${n.name}/axes`, [2], new Int32Array([1, 2]));
        op(n.name, 'Mean', [n.input, axes], { keep_dims: { b: false }, Tidx: { type: 'DT_INT32' } });
        return;
      }
      case 'dense': {
        const w = constant(`${n.name}/weight`, n.weightShape, n.weight);
        const b = constant(`${n.name}/bias`, [n.bias.length], n.bias);
        const mm = op(`${n.name}/matmul`, 'MatMul', [n.input, w], { transpose_a: { b: false }, transpose_b: { b: false } });
        op(n.name, 'BiasAdd', [mm, b], nhwc);
        return;
      }
      case 'l2Normalize': {
        // x / sqrt(sum(x^2) + 1e-10): the training graph's formula, epsilon included.
        const axes = constant(`${n.name}/axes`, [1], new Int32Array([1]));
        const eps = constant(`${n.name}/epsilon`, [], new Float32Array([1e-10]));
        const sq = op(`${n.name}/square`, 'Square', [n.input]);
        const sum = op(`${n.name}/sumsq`, 'Sum', [sq, axes], { keep_dims: { b: true }, Tidx: { type: 'DT_INT32' } });
        const norm = op(`${n.name}/norm`, 'Sqrt', [op(`${n.name}/sumsq_eps`, 'AddV2', [sum, eps])]);
        op(n.name, 'RealDiv', [n.input, norm]);
        return;
      }
    }
  };
  for (const n of graph.nodes) emit(n);
  const weightsFile = 'group1-shard1of1.bin';
  return {
    weightsFile,
    weights: Buffer.concat(chunks),
    modelJson: {
      format: 'graph-model',
      generatedBy: `facenet-trainer ${producerVersion}`,
      convertedBy: 'facenet export',
      modelTopology: { node: nodes, library: {}, versions: { producer: 1 } },
      weightsManifest: [{ paths: [weightsFile], weights: weightSpecs }],
      userDefinedMetadata: metadata,
    },
  };
}
