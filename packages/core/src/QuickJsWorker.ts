/**
 * Worker-thread entry of the expression sandbox: one warmed QuickJS VM per worker, evaluating one
 * expression at a time for the pool in QuickJsSandbox.ts. Bundled beside the CLI as
 * quickjs-worker.mjs (apps/cli/build.mjs).
 */
import { poolData, serve } from "@relavium/ports/WorkerServe"
import { type EncodedScope, makeEvaluator, type Outcome, type QuickJsLimits } from "./QuickJsVm.js"

export interface Request {
  readonly program: string
  readonly encoded: EncodedScope
}

serve<Request, Outcome>(async () => {
  const evaluate = await makeEvaluator(poolData<QuickJsLimits>())
  return async (request) => {
    const outcome = await evaluate(request.program, request.encoded)
    return outcome._tag === "Failure" ? { _tag: "Failure", message: outcome.message, retryable: outcome.retryable } : outcome
  }
})
