/**
 * `RateLimiter` on Redis, shared by every gateway replica: a sliding window (one minute unless
 * configured) of requests and tokens per org and per token.
 *
 * Each scope is a sorted set of the requests it accepted in the window (score: Redis's own clock
 * in ms, so replicas with skewed clocks agree; member: `<tokens>:<unique id>`). One Lua script
 * (`defineCommand`, sent as EVALSHA) drops what left the window, checks the requests and the
 * tokens of every scope, and only when all of them fit records the request in each: concurrent
 * acquires on any number of replicas are serialised by Redis and never exceed a limit. A refusal
 * says which scope and which limit, and when the oldest requests that must leave the window to
 * make room will have left (`retryAfterMs`). A request needing more tokens than a whole window
 * allows is refused with the window as its retry-after.
 */
import { Duration, Effect, Layer, ParseResult, Redacted, Schema } from "effect"
import { Redis } from "ioredis"
import { type BudgetScope, MeteringError, RateLimited, RateLimiter, type RateLimits } from "./Metering.js"

export interface RedisRateLimiterOptions {
  readonly url: Redacted.Redacted<string> | string
  /** Prefix of every key (default `relavium`); keys are `<prefix>:rate:<scope>:<id>`. */
  readonly keyPrefix?: string | undefined
  /** Limits of each org (absent: none). */
  readonly perOrg?: RateLimits | undefined
  /** Limits of each API token (absent: none). */
  readonly perToken?: RateLimits | undefined
  /** The sliding window (default one minute: the limits are per minute). */
  readonly window?: Duration.DurationInput | undefined
  readonly connectTimeout?: Duration.DurationInput | undefined
}

/**
 * KEYS: one sorted set per scope, the org's first. ARGV[1]: window (ms); ARGV[2]: the request's
 * tokens; ARGV[3]: a unique id; then per key, its requests limit and its tokens limit (-1: none).
 * Returns `{0}` when accepted, else `{key index, 'requests' | 'tokens', retry after ms}`.
 */
const slidingWindowScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local tokens = tonumber(ARGV[2])
local id = ARGV[3]
for i, key in ipairs(KEYS) do
  local maxRequests = tonumber(ARGV[2 + 2 * i])
  local maxTokens = tonumber(ARGV[3 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local entries = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  local count = #entries / 2
  if maxRequests >= 0 and count + 1 > maxRequests then
    local leave = count + 1 - maxRequests
    if maxRequests == 0 or leave > count then return {i, 'requests', window} end
    return {i, 'requests', math.max(1, tonumber(entries[2 * leave]) + window - now)}
  end
  if maxTokens >= 0 then
    local used = 0
    for j = 1, count do
      used = used + tonumber(string.match(entries[2 * j - 1], '^(%d+):'))
    end
    if used + tokens > maxTokens then
      if tokens > maxTokens then return {i, 'tokens', window} end
      local freed = 0
      for j = 1, count do
        freed = freed + tonumber(string.match(entries[2 * j - 1], '^(%d+):'))
        if used - freed + tokens <= maxTokens then
          return {i, 'tokens', math.max(1, tonumber(entries[2 * j]) + window - now)}
        end
      end
      return {i, 'tokens', window}
    end
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, tokens .. ':' .. id)
  redis.call('PEXPIRE', key, window)
end
return {0}
`

type SlidingWindowReply = [0] | [number, "requests" | "tokens", number]

interface RateLimitRedis extends Redis {
  relaviumSlidingWindow(...args: Array<string | number>): Promise<SlidingWindowReply>
}

const describe = (cause: unknown): string => (cause instanceof Error ? cause.message || cause.name : String(cause))

const redactUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = "***"
    return parsed.toString()
  } catch {
    return "the configured URL"
  }
}

const Id = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200))
const AcquireInput = Schema.Struct({
  orgId: Id,
  tokenId: Schema.UndefinedOr(Id),
  tokens: Schema.Int.pipe(Schema.nonNegative(), Schema.lessThanOrEqualTo(Number.MAX_SAFE_INTEGER))
})

const limitArg = (value: number | undefined): number => (value === undefined ? -1 : Math.max(0, Math.floor(value)))

/** `RateLimiter` on Redis; fails with a `MeteringError` naming Redis (password masked) when it cannot be reached. */
export const layer = (options: RedisRateLimiterOptions): Layer.Layer<RateLimiter, MeteringError> =>
  Layer.scoped(
    RateLimiter,
    Effect.gen(function* () {
      const url = Redacted.isRedacted(options.url) ? Redacted.value(options.url) : options.url
      const prefix = options.keyPrefix ?? "relavium"
      const windowMs = Duration.toMillis(Duration.decode(options.window ?? "1 minute"))
      const windowText = windowMs === 60_000 ? "minute" : Duration.format(Duration.millis(windowMs))
      const timeout = Duration.decode(options.connectTimeout ?? "5 seconds")
      const unreachable = (reason: string, cause?: unknown) =>
        new MeteringError({ message: `cannot reach Redis at ${redactUrl(url)} for rate limits: ${reason}`, cause })
      const client = yield* Effect.acquireRelease(
        Effect.suspend(() => {
          let lastError: unknown
          const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: Duration.toMillis(timeout) })
          redis.on("error", (error) => (lastError = error))
          redis.defineCommand("relaviumSlidingWindow", { lua: slidingWindowScript })
          return Effect.tryPromise({
            try: () => redis.connect().then(() => redis.ping()),
            catch: (cause) => unreachable(describe(lastError ?? cause), lastError ?? cause)
          }).pipe(
            Effect.timeoutFail({ duration: timeout, onTimeout: () => unreachable(`no answer within ${Duration.format(timeout)}`) }),
            Effect.as(redis as RateLimitRedis),
            Effect.tapError(() => Effect.sync(() => redis.disconnect()))
          )
        }),
        (redis) => Effect.sync(() => redis.disconnect())
      )

      const acquire: RateLimiter["Type"]["acquire"] = (raw) =>
        Effect.gen(function* () {
          const input = yield* Schema.decodeUnknown(AcquireInput)(raw).pipe(
            Effect.mapError(
              (error) => new MeteringError({ message: `invalid rate-limit request: ${ParseResult.TreeFormatter.formatErrorSync(error)}` })
            )
          )
          const scopes: Array<{ readonly scope: BudgetScope; readonly key: string; readonly limits: RateLimits }> = [
            { scope: "org", key: `${prefix}:rate:org:${input.orgId}`, limits: options.perOrg ?? {} }
          ]
          if (input.tokenId !== undefined) {
            scopes.push({ scope: "token", key: `${prefix}:rate:token:${input.orgId}:${input.tokenId}`, limits: options.perToken ?? {} })
          }
          const limited = scopes.filter((s) => s.limits.requestsPerMinute !== undefined || s.limits.tokensPerMinute !== undefined)
          if (limited.length === 0) return
          const reply = yield* Effect.tryPromise({
            try: () =>
              client.relaviumSlidingWindow(
                limited.length,
                ...limited.map((s) => s.key),
                windowMs,
                input.tokens,
                crypto.randomUUID(),
                ...limited.flatMap((s) => [limitArg(s.limits.requestsPerMinute), limitArg(s.limits.tokensPerMinute)])
              ),
            catch: (cause) => new MeteringError({ message: `the rate limiter's Redis failed: ${describe(cause)}`, cause })
          })
          if (reply[0] === 0) return
          const [index, limit, retryAfterMs] = reply as [number, "requests" | "tokens", number]
          const refused = limited[index - 1]!
          const max = limit === "requests" ? refused.limits.requestsPerMinute : refused.limits.tokensPerMinute
          return yield* new RateLimited({
            scope: refused.scope,
            limit,
            retryAfterMs: Number(retryAfterMs),
            message: `the ${refused.scope}'s limit of ${max} ${limit} per ${windowText} is reached: retry in ${Math.ceil(Number(retryAfterMs) / 1000)} s`
          })
        })

      return RateLimiter.of({ acquire })
    })
  )
