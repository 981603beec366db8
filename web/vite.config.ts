import { defineConfig } from 'vite';

// The dashboard is served by the JobManager at / or under rest.base-path or
// a proxy's prefix, so every URL in the build is relative ('./'). No inline
// script or style (the server's Content-Security-Policy forbids them), no
// module-preload polyfill (it would be inline), one deterministic output.
export default defineConfig({
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: false,
  },
});
