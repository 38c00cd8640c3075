// Builds the dashboard to web/dist: index.html plus content-hashed assets under assets/.
// No inline script (the page's Content-Security-Policy admits only files of this origin).
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 400,
  },
});
