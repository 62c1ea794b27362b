/**
 * Keeps the k entries of smallest score seen so far (a max-heap on score): O(log k) per offer,
 * O(k) memory, whatever the number of candidates. Used for "top-k per row as it goes".
 */
export class BoundedHeap {
  private readonly scores: Float64Array;
  private readonly ids: Int32Array;
  private readonly values: Float32Array;
  size = 0;

  constructor(readonly capacity: number) {
    this.scores = new Float64Array(capacity);
    this.ids = new Int32Array(capacity);
    this.values = new Float32Array(capacity);
  }

  /** The worst kept score (Infinity while not full): candidates must beat it. */
  get bound(): number {
    return this.size < this.capacity ? Infinity : (this.scores[0] as number);
  }

  offer(score: number, id: number, value: number): void {
    if (this.capacity === 0) return;
    if (this.size < this.capacity) {
      let i = this.size++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if ((this.scores[parent] as number) >= score) break;
        this.move(parent, i);
        i = parent;
      }
      this.put(i, score, id, value);
      return;
    }
    if (score >= (this.scores[0] as number)) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let big = i;
      let bigScore = score;
      if (l < this.size && (this.scores[l] as number) > bigScore) {
        big = l;
        bigScore = this.scores[l] as number;
      }
      if (r < this.size && (this.scores[r] as number) > bigScore) {
        big = r;
      }
      if (big === i) break;
      this.move(big, i);
      i = big;
    }
    this.put(i, score, id, value);
  }

  private move(from: number, to: number): void {
    this.scores[to] = this.scores[from] as number;
    this.ids[to] = this.ids[from] as number;
    this.values[to] = this.values[from] as number;
  }

  private put(i: number, score: number, id: number, value: number): void {
    this.scores[i] = score;
    this.ids[i] = id;
    this.values[i] = value;
  }

  /** Empties the heap for reuse (no allocation). */
  clear(): void {
    this.size = 0;
  }

  /** Entries by ascending score (ties by id). */
  sorted(): { score: number; id: number; value: number }[] {
    const out = [];
    for (let i = 0; i < this.size; i++)
      out.push({ score: this.scores[i] as number, id: this.ids[i] as number, value: this.values[i] as number });
    return out.sort((x, y) => x.score - y.score || x.id - y.id);
  }
}
