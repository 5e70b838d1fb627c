#!/usr/bin/env node
// The published package runs the compiled CLI (`npm run build` emits dist/); in a checkout
// without a build, `npm run demo` / `node src/cli/main.ts` run the sources directly.
import "../dist/cli/main.js"
