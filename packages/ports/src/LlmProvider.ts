/**
 * The model seam. A layer of this tag turns a provider-neutral request into a
 * stream of chunks; it picks the adapter from `request.provider` and looks up
 * its own key, so callers never hold one.
 */
import type { Stream } from "effect"
import { Context } from "effect"
import type { Llm } from "@relavium/domain"

export class LlmProvider extends Context.Tag("@relavium/ports/LlmProvider")<
  LlmProvider,
  {
    readonly stream: (request: Llm.LlmRequest) => Stream.Stream<Llm.StreamChunk, Llm.LlmError>
  }
>() {}
