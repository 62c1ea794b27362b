import { tf } from '../backend/tf';
import { EmbeddingModel, embeddingNet } from '../model/embedding-model';
import { denseParams, foldedConvBn } from '../model/layers';
import { NetBuilder } from '../model/net-builder';

/** An activation in a traced graph: the name of the node that produced it and its shape without the batch axis (NHWC). */
export interface Sym {
  node: string;
  shape: number[];
}

/** One operation of the inference network, with its weights (batch norm already folded into each conv). */
export type GraphNode = { name: string; output: number[] } & (
  | {
      op: 'conv';
      input: string;
      /** [k, k, in, out] (HWIO), batch norm folded in. */
      filter: Float32Array;
      filterShape: [number, number, number, number];
      bias: Float32Array;
      stride: number;
      relu: boolean;
    }
  | { op: 'maxPool'; input: string; size: number; stride: number }
  | { op: 'concat'; inputs: string[] }
  | { op: 'addRelu'; inputs: [string, string] }
  | { op: 'globalAvgPool'; input: string }
  | { op: 'dense'; input: string; weight: Float32Array; weightShape: [number, number]; bias: Float32Array }
  | { op: 'l2Normalize'; input: string }
);

/** The network as data: input [N, S, S, 3] in [-1, 1] named `input`, nodes in execution order, the last one the embedding. */
export interface InferenceGraph {
  input: string;
  imageSize: number;
  embeddingDim: number;
  nodes: GraphNode[];
}

/** 'same' padding (TensorFlow's rule: the odd pixel goes after) along one axis. */
export function samePadding(size: number, kernel: number, stride: number): { out: number; before: number; after: number } {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + kernel - size, 0);
  const before = Math.floor(total / 2);
  return { out, before, after: total - before };
}

/**
 * Runs the model's description (the zoo + embedding head, the same code that trains) against
 * symbolic activations, recording each operation with its inference-mode weights read from the
 * model: the graph every exporter writes. Nothing here is specific to one architecture, so a
 * new zoo entry exports as soon as it uses only NetBuilder's operations.
 */
export function traceInferenceGraph(model: EmbeddingModel): InferenceGraph {
  const { imageSize, embeddingDim } = model.config;
  const nodes: GraphNode[] = [];
  const names = new Map<string, number>();
  const unique = (base: string) => {
    const n = names.get(base) ?? 0;
    names.set(base, n + 1);
    return n === 0 ? base : `${base}_${n}`;
  };
  const emit = (node: GraphNode): Sym => {
    nodes.push(node);
    return { node: node.name, shape: node.output };
  };
  const values = (t: tf.Tensor) => t.dataSync() as Float32Array;
  const builder: NetBuilder<Sym> = {
    channels: (x) => x.shape[x.shape.length - 1] as number,
    convBn(name, x, filters, kernel, stride, relu) {
      const [h, w, c] = x.shape as [number, number, number];
      const { filter, bias } = foldedConvBn(model.store, name, c, filters, kernel);
      try {
        const out = [samePadding(h, kernel, stride).out, samePadding(w, kernel, stride).out, filters];
        return emit({
          name: unique(name),
          op: 'conv',
          input: x.node,
          output: out,
          filter: values(filter).slice(),
          filterShape: [kernel, kernel, c, filters],
          bias: values(bias).slice(),
          stride,
          relu,
        });
      } finally {
        tf.dispose([filter, bias]);
      }
    },
    convBnRelu(name, x, filters, kernel, stride = 1) {
      return this.convBn(name, x, filters, kernel, stride, true);
    },
    maxPool(x, size, stride) {
      const [h, w, c] = x.shape as [number, number, number];
      const out = [samePadding(h, size, stride).out, samePadding(w, size, stride).out, c];
      return emit({ name: unique(`${x.node}/maxpool`), op: 'maxPool', input: x.node, output: out, size, stride });
    },
    concat(xs) {
      const [first] = xs as [Sym];
      const c = xs.reduce((a, x) => a + (x.shape[2] as number), 0);
      const base = first.node.includes('/') ? first.node.slice(0, first.node.indexOf('/')) : first.node;
      return emit({
        name: unique(`${base}/concat`),
        op: 'concat',
        inputs: xs.map((x) => x.node),
        output: [first.shape[0] as number, first.shape[1] as number, c],
      });
    },
    addRelu(a, b) {
      return emit({ name: unique(`${a.node}/add_relu`), op: 'addRelu', inputs: [a.node, b.node], output: a.shape });
    },
    globalAvgPool(x) {
      return emit({ name: unique('global_avg_pool'), op: 'globalAvgPool', input: x.node, output: [x.shape[2] as number] });
    },
    dense(name, x, units) {
      const inF = x.shape[0] as number;
      const { w, b } = denseParams(model.store, name, inF, units);
      return emit({
        name: unique(name),
        op: 'dense',
        input: x.node,
        output: [units],
        weight: values(w).slice(),
        weightShape: [inF, units],
        bias: values(b).slice(),
      });
    },
    l2Normalize(x) {
      return emit({ name: unique('embeddings'), op: 'l2Normalize', input: x.node, output: x.shape });
    },
  };
  embeddingNet(builder, { node: 'input', shape: [imageSize, imageSize, 3] }, model.config);
  return { input: 'input', imageSize, embeddingDim, nodes };
}
