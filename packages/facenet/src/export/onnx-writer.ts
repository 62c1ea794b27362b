import { onnx } from 'onnx-proto';
import { GraphNode, InferenceGraph, samePadding } from './inference-graph';

/** Opset 13 (ONNX 1.8, 2020): every runtime of the last years reads it, and ReduceSumSquare still takes `axes` as an attribute. */
export const ONNX_OPSET = 13;
const IR_VERSION = 7;

const { AttributeType } = onnx.AttributeProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

const ints = (name: string, v: number[]): onnx.IAttributeProto => ({ name, type: AttributeType.INTS, ints: v });
const int = (name: string, v: number): onnx.IAttributeProto => ({ name, type: AttributeType.INT, i: v });

function floatTensor(name: string, dims: number[], data: Float32Array): onnx.ITensorProto {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { name, dims, dataType: FLOAT, rawData: bytes.slice() }; // raw_data is little-endian, as is every host Node runs on
}

/** [k, k, in, out] (TensorFlow's HWIO) -> [out, in, k, k] (ONNX's OIHW). */
function hwioToOihw(w: Float32Array, [kh, kw, ci, co]: [number, number, number, number]): Float32Array {
  const out = new Float32Array(w.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < ci; i++)
        for (let o = 0; o < co; o++) out[((o * ci + i) * kh + y) * kw + x] = w[((y * kw + x) * ci + i) * co + o] as number;
  return out;
}

/** ONNX pads [top, left, bottom, right] reproducing TensorFlow's 'same' on an input of [h, w]. */
function samePads(h: number, w: number, kernel: number, stride: number): number[] {
  const ph = samePadding(h, kernel, stride);
  const pw = samePadding(w, kernel, stride);
  return [ph.before, pw.before, ph.after, pw.after];
}

/**
 * Writes the traced graph as an ONNX model: NHWC input `input` [N, S, S, 3] (transposed to NCHW
 * inside, so a caller feeds the same array as to TensorFlow.js), output `embeddings` [N, D].
 * 'same' padding becomes explicit pads (the input size is fixed), so no runtime's auto_pad
 * convention matters. `metadata` goes into the model's metadata_props.
 */
export function writeOnnx(graph: InferenceGraph, metadata: Record<string, string>, producerVersion: string): Uint8Array {
  const nodes: onnx.INodeProto[] = [];
  const initializer: onnx.ITensorProto[] = [];
  const shapes = new Map<string, number[]>([[graph.input, [graph.imageSize, graph.imageSize, 3]]]);
  const op = (opType: string, name: string, input: string[], output: string, attribute: onnx.IAttributeProto[] = []) =>
    nodes.push({ opType, name, input, output: [output], attribute });
  const nchw = `${graph.input}/nchw`;
  op('Transpose', nchw, [graph.input], nchw, [ints('perm', [0, 3, 1, 2])]);
  const tensorOf = (name: string) => (name === graph.input ? nchw : name);

  const emit = (n: GraphNode) => {
    switch (n.op) {
      case 'conv': {
        const [h, w] = shapes.get(n.input) as number[];
        const k = n.filterShape[0];
        initializer.push(floatTensor(`${n.name}/filter`, [n.filterShape[3], n.filterShape[2], k, k], hwioToOihw(n.filter, n.filterShape)));
        initializer.push(floatTensor(`${n.name}/bias`, [n.bias.length], n.bias));
        const convOut = n.relu ? `${n.name}/conv` : n.name;
        op('Conv', convOut, [tensorOf(n.input), `${n.name}/filter`, `${n.name}/bias`], convOut, [
          ints('kernel_shape', [k, k]),
          ints('strides', [n.stride, n.stride]),
          ints('pads', samePads(h as number, w as number, k, n.stride)),
        ]);
        if (n.relu) op('Relu', n.name, [convOut], n.name);
        return;
      }
      case 'maxPool': {
        const [h, w] = shapes.get(n.input) as number[];
        op('MaxPool', n.name, [tensorOf(n.input)], n.name, [
          ints('kernel_shape', [n.size, n.size]),
          ints('strides', [n.stride, n.stride]),
          ints('pads', samePads(h as number, w as number, n.size, n.stride)),
        ]);
        return;
      }
      case 'concat':
        op('Concat', n.name, n.inputs.map(tensorOf), n.name, [int('axis', 1)]);
        return;
      case 'addRelu':
        op('Add', `${n.name}/add`, n.inputs.map(tensorOf), `${n.name}/add`);
        op('Relu', n.name, [`${n.name}/add`], n.name);
        return;
      case 'globalAvgPool':
        op('GlobalAveragePool', `${n.name}/nc11`, [tensorOf(n.input)], `${n.name}/nc11`);
        op('Flatten', n.name, [`${n.name}/nc11`], n.name, [int('axis', 1)]);
        return;
      case 'dense':
        initializer.push(floatTensor(`${n.name}/weight`, n.weightShape, n.weight));
        initializer.push(floatTensor(`${n.name}/bias`, [n.bias.length], n.bias));
        op('Gemm', n.name, [n.input, `${n.name}/weight`, `${n.name}/bias`], n.name);
        return;
      case 'l2Normalize': {
        // x / sqrt(sum(x^2) + 1e-10): the training graph's formula, epsilon included.
        initializer.push(floatTensor(`${n.name}/epsilon`, [], new Float32Array([1e-10])));
        op('ReduceSumSquare', `${n.name}/sumsq`, [n.input], `${n.name}/sumsq`, [ints('axes', [1]), int('keepdims', 1)]);
        op('Add', `${n.name}/sumsq_eps`, [`${n.name}/sumsq`, `${n.name}/epsilon`], `${n.name}/sumsq_eps`);
        op('Sqrt', `${n.name}/norm`, [`${n.name}/sumsq_eps`], `${n.name}/norm`);
        op('Div', n.name, [n.input, `${n.name}/norm`], n.name);
        return;
      }
    }
  };
  for (const n of graph.nodes) {
    emit(n);
    shapes.set(n.name, n.output);
  }
  const last = graph.nodes[graph.nodes.length - 1] as GraphNode;
  const valueInfo = (name: string, dims: onnx.TensorShapeProto.IDimension[]): onnx.IValueInfoProto => ({
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims } } },
  });
  const model: onnx.IModelProto = {
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'facenet-trainer',
    producerVersion,
    docString: 'FaceNet-style face embedding: RGB face crops -> L2-normalised embeddings (squared distance = dissimilarity).',
    graph: {
      name: 'facenet',
      node: nodes,
      initializer,
      input: [valueInfo(graph.input, [{ dimParam: 'N' }, { dimValue: graph.imageSize }, { dimValue: graph.imageSize }, { dimValue: 3 }])],
      output: [valueInfo(last.name, [{ dimParam: 'N' }, { dimValue: graph.embeddingDim }])],
    },
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}
