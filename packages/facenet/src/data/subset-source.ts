import { rngFor, shuffled } from '../util/random';
import { FaceSource, IdentityIndex, identitySizes, imageCount, SquareImage, subIndex } from './face-source';

/** A view of some identities of another source (e.g. the training side of a held-out split). */
export class SubsetSource implements FaceSource {
  readonly index: IdentityIndex;
  readonly description: string;

  constructor(
    private readonly parent: FaceSource,
    readonly identities: number[],
    label = 'subset',
  ) {
    this.index = subIndex(parent.index, identities);
    const n = imageCount(this.index);
    this.description = `${label} of ${parent.description}: ${identities.length} identities, ${n} images`;
  }

  get cropFraction(): number | undefined {
    return this.parent.cropFraction;
  }

  read(key: string, side: number): Promise<SquareImage> {
    return this.parent.read(key, side);
  }
}

/**
 * Holds out `count` identities with 2+ images (chosen by seed) for evaluation; the rest,
 * one-image identities included, train. Identity-disjoint, as verification protocols require.
 */
export function splitHoldout(index: IdentityIndex, count: number, seed: number): { train: number[]; holdout: number[] } {
  const sizes = identitySizes(index);
  const eligible: number[] = [];
  for (let i = 0; i < sizes.length; i++) if ((sizes[i] as number) >= 2) eligible.push(i);
  const holdout = new Set(shuffled(eligible, rngFor(seed, 'holdout')).slice(0, count));
  const train: number[] = [];
  for (let i = 0; i < sizes.length; i++) if (!holdout.has(i)) train.push(i);
  return {
    train,
    holdout: [...holdout].sort((a, b) => a - b),
  };
}
