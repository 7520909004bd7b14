#!/usr/bin/env node
import { answer, enableCompileCache } from "./fast.mjs"

if (!answer(process.argv.slice(2))) {
  enableCompileCache()
  await import("../dist/relavium.mjs")
}
