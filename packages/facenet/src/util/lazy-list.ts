/**
 * A read-only array whose element i is `at(i)`, computed when read: every array method that
 * reads by index and length (map, filter, reduce, for-of, spread) works on it. Indexes of
 * millions of images stay a formula or a packed buffer instead of millions of strings.
 */
export function lazyList<T>(length: number, at: (i: number) => T): T[] {
  const isIndex = (p: string | symbol): p is string => {
    if (typeof p !== 'string') return false;
    const i = Number(p);
    return Number.isInteger(i) && i >= 0 && i < length && String(i) === p;
  };
  return new Proxy([] as T[], {
    get: (target, p, receiver) => (p === 'length' ? length : isIndex(p) ? at(Number(p)) : Reflect.get(target, p, receiver)),
    has: (target, p) => isIndex(p) || Reflect.has(target, p),
    set: () => false,
    getOwnPropertyDescriptor: (target, p) =>
      isIndex(p)
        ? { value: at(Number(p)), writable: false, enumerable: true, configurable: true }
        : Reflect.getOwnPropertyDescriptor(target, p),
    ownKeys: (target) => [...Array.from({ length }, (_, i) => String(i)), ...Reflect.ownKeys(target)],
  });
}
