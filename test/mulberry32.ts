/**
 * mulberry32: a small seeded PRNG for tests and fuzzers, so a failure can be replayed from its
 * seed. The generator is Tommy Ettinger's Mulberry32 (public domain, 2017): a Weyl sequence with
 * increment 0x6D2B79F5 whose state is scrambled by three xorshift-multiply rounds; its constants
 * are the generator's definition. Pure (no platform API): imported by the workerd and the Node-side tests alike.
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
