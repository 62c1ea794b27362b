import { NetBuilder } from './net-builder';

/**
 * A network body: image batch [N, S, S, 3] in [-1, 1] -> unnormalised features [N, F]. Written
 * against NetBuilder so the same code runs (tensors) and exports (a traced graph).
 */
export type Architecture = <T>(b: NetBuilder<T>, x: T, width: number) => T;

const ch = (n: number, width: number) => Math.max(4, Math.round(n * width));

/** Three stride-2 convs and a global pool: a few thousand parameters, for tests. */
const tiny: Architecture = (b, x, w) => {
  let h = b.convBnRelu('conv1', x, ch(16, w), 3, 2);
  h = b.convBnRelu('conv2', h, ch(32, w), 3, 2);
  h = b.convBnRelu('conv3', h, ch(64, w), 3, 2);
  return b.globalAvgPool(h);
};

interface InceptionSpec {
  /** 1x1 branch (0 = none). */
  c1: number;
  /** 3x3 branch: reduce, out. */
  c3: [number, number];
  /** 5x5 branch: reduce, out (0 = none). */
  c5: [number, number];
  /** Pool branch projection (0 = pass the pooled input through, for stride-2 modules). */
  pool: number;
  stride: 1 | 2;
}

/** One GoogLeNet/NN4-style module: parallel 1x1, 3x3, 5x5 and pooled branches, concatenated. */
function inception<T>(b: NetBuilder<T>, name: string, x: T, s: InceptionSpec, w: number): T {
  const branches: T[] = [];
  if (s.c1 > 0) branches.push(b.convBnRelu(`${name}/1x1`, x, ch(s.c1, w), 1, s.stride));
  const r3 = b.convBnRelu(`${name}/3x3r`, x, ch(s.c3[0], w), 1);
  branches.push(b.convBnRelu(`${name}/3x3`, r3, ch(s.c3[1], w), 3, s.stride));
  if (s.c5[1] > 0) {
    const r5 = b.convBnRelu(`${name}/5x5r`, x, ch(s.c5[0], w), 1);
    branches.push(b.convBnRelu(`${name}/5x5`, r5, ch(s.c5[1], w), 5, s.stride));
  }
  const pooled = b.maxPool(x, 3, s.stride);
  branches.push(s.pool > 0 ? b.convBnRelu(`${name}/pool`, pooled, ch(s.pool, w), 1) : pooled);
  return b.concat(branches);
}

/**
 * A small Inception net in the spirit of the paper's NN4/NNS models (Table 2), sized for 96 px:
 * 7x7 stem, 3x3 stage, then inception modules 3a-3c, 4a, 4e, 5a and global average pooling.
 */
const inceptionSmall: Architecture = (b, x, w) => {
  let h = b.convBnRelu('conv1', x, ch(32, w), 7, 2);
  h = b.maxPool(h, 3, 2);
  h = b.convBnRelu('conv2r', h, ch(32, w), 1);
  h = b.convBnRelu('conv2', h, ch(96, w), 3);
  h = b.maxPool(h, 3, 2);
  h = inception(b, '3a', h, { c1: 32, c3: [48, 64], c5: [8, 16], pool: 16, stride: 1 }, w);
  h = inception(b, '3b', h, { c1: 32, c3: [48, 64], c5: [16, 32], pool: 32, stride: 1 }, w);
  h = inception(b, '3c', h, { c1: 0, c3: [64, 128], c5: [16, 32], pool: 0, stride: 2 }, w);
  h = inception(b, '4a', h, { c1: 128, c3: [64, 128], c5: [16, 32], pool: 64, stride: 1 }, w);
  h = inception(b, '4e', h, { c1: 0, c3: [96, 192], c5: [32, 64], pool: 0, stride: 2 }, w);
  h = inception(b, '5a', h, { c1: 192, c3: [96, 192], c5: [0, 0], pool: 64, stride: 1 }, w);
  return b.globalAvgPool(h);
};

function residualBlock<T>(b: NetBuilder<T>, name: string, x: T, filters: number, stride: number): T {
  let h = b.convBnRelu(`${name}/a`, x, filters, 3, stride);
  h = b.convBn(`${name}/b`, h, filters, 3, 1, false);
  const shortcut = stride === 1 && b.channels(x) === filters ? x : b.convBn(`${name}/proj`, x, filters, 1, stride, false);
  return b.addRelu(h, shortcut);
}

/** A ResNet-10-style net: stem, four stages of one basic residual block each. */
const resnetSmall: Architecture = (b, x, w) => {
  let h = b.convBnRelu('stem', x, ch(32, w), 3, 2);
  h = residualBlock(b, 'stage1', h, ch(32, w), 1);
  h = residualBlock(b, 'stage2', h, ch(64, w), 2);
  h = residualBlock(b, 'stage3', h, ch(128, w), 2);
  h = residualBlock(b, 'stage4', h, ch(256, w), 2);
  return b.globalAvgPool(h);
};

export const ZOO = {
  tiny: { body: tiny, defaultImageSize: 32, summary: 'three stride-2 convs, for tests' },
  'inception-small': { body: inceptionSmall, defaultImageSize: 96, summary: 'NN4/NNS-style Inception net for 96 px' },
  'resnet-small': { body: resnetSmall, defaultImageSize: 64, summary: 'ResNet-10-style residual net' },
} as const satisfies Record<string, { body: Architecture; defaultImageSize: number; summary: string }>;

export type ArchitectureName = keyof typeof ZOO;
export const ARCHITECTURES = Object.keys(ZOO) as ArchitectureName[];
