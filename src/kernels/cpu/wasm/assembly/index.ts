/** The kernels of the WebAssembly SIMD tier: the module's exports (see ../README or ../module.ts). */
export { matvecF32, matvecBf16, matvecF16, matmulTiledF32, matmulTiledBf16, matmulTiledF16 } from './matmul';
export { attentionF32 } from './attention';
export { contrastRowStats, contrastZ, contrastSoftmaxInPlace } from './contrast';
export { streamSum } from './stream';
export { expInPlace } from './math';
