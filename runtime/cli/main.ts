#!/usr/bin/env node
/**
 * The `omniqueue` command. Compiled to `dist/runtime/cli/main.js` (the package's `bin`); in the
 * repository, `npm run omniqueue -- <command>` runs it through tsx.
 *
 * @packageDocumentation
 */
import { run } from './program.js';

process.exit(await run(process.argv));
