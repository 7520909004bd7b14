/**
 * The contract every `Triggers` layer must meet (memory here; SQLite and Postgres in
 * packages/store). Each test acts for an org of its own (random ids), so tests sharing the layer
 * never see each other's triggers. Time is the `TestClock`.
 */
import { assert, describe, layer as sharedLayer } from "@effect/vitest"
import { Effect, type Layer, Option, Redacted, TestClock, TestContext } from "effect"
import { forOrg } from "../Tenancy.js"
import { type NewTrigger, Triggers } from "../Triggers.js"

const newOrg = () => `org_${crypto.randomUUID().replaceAll("-", "")}`

const webhook = (overrides: Partial<NewTrigger> = {}): NewTrigger => ({
  workflowId: crypto.randomUUID(),
  kind: "webhook",
  name: "on push",
  inputTemplate: { title: "{{ ctx.body.title }}" },
  createdBy: "ada@example.com",
  ...overrides
})

const schedule = (overrides: Partial<NewTrigger> = {}): NewTrigger => ({
  workflowId: crypto.randomUUID(),
  kind: "schedule",
  name: "nightly",
  cron: "0 3 * * *",
  timezone: "Europe/Paris",
  inputs: { depth: 2 },
  createdBy: "ada@example.com",
  ...overrides
})

const T0 = Date.parse("2026-03-01T10:00:00.000Z")

export const triggersContract = (name: string, layer: Layer.Layer<Triggers, unknown>) =>
  describe(`Triggers contract: ${name}`, () => {
    sharedLayer(layer, { timeout: "60 seconds", excludeTestServices: true })((shared) => {
      const it = {
        effect: (title: string, body: () => Effect.Effect<void, unknown, Triggers>) =>
          shared.effect(title, () => Effect.provide(Effect.zipRight(TestClock.setTime(T0), body()), TestContext.TestContext))
      }

      it.effect("a webhook trigger's secret is returned once, and only its org sees the trigger", () =>
        Effect.gen(function* () {
          const triggers = yield* Triggers
          const a = newOrg()
          const created = yield* forOrg(a)(triggers.create(webhook()))
          assert.isTrue(Option.isSome(created.secret))
          const secret = Option.getOrThrow(created.secret)
          assert.match(Redacted.value(secret), /^whsec_[A-Za-z0-9+/]{43}=$/)
          assert.match(created.trigger.id, /^trg_[0-9a-f]{32}$/)
          assert.strictEqual(created.trigger.createdAt, new Date(T0).toISOString())
          assert.strictEqual(created.trigger.rateLimitPerMinute, 60)
          assert.deepStrictEqual(created.trigger.inputTemplate, { title: "{{ ctx.body.title }}" })
          const listed = yield* forOrg(a)(triggers.list)
          assert.deepStrictEqual(listed.map((t) => t.id), [created.trigger.id])
          assert.notInclude(JSON.stringify(listed), Redacted.value(secret))
          assert.deepStrictEqual((yield* forOrg(a)(triggers.secrets(created.trigger.id))).map(Redacted.value), [Redacted.value(secret)])
          assert.deepStrictEqual(yield* triggers.orgOf(created.trigger.id), Option.some(a))
          assert.deepStrictEqual(yield* triggers.orgOf("trg_00000000000000000000000000000000"), Option.none())
          // Another org: nothing to see, read or remove.
          const b = newOrg()
          assert.deepStrictEqual(yield* forOrg(b)(triggers.list), [])
          assert.isTrue(Option.isNone(yield* forOrg(b)(triggers.get(created.trigger.id))))
          assert.deepStrictEqual(yield* forOrg(b)(triggers.secrets(created.trigger.id)), [])
          assert.isFalse(yield* forOrg(b)(triggers.remove(created.trigger.id)))
          assert.isTrue(Option.isNone(yield* forOrg(b)(triggers.rotateSecret(created.trigger.id, new Date(T0 + 60_000).toISOString()))))
          assert.isTrue(Option.isSome(yield* forOrg(a)(triggers.get(created.trigger.id))))
          assert.isTrue(yield* forOrg(a)(triggers.remove(created.trigger.id)))
          assert.deepStrictEqual(yield* forOrg(a)(triggers.list), [])
          assert.deepStrictEqual(yield* triggers.orgOf(created.trigger.id), Option.none())
        }))

      it.effect("a rotation keeps the previous secret valid until its window ends", () =>
        Effect.gen(function* () {
          const triggers = yield* Triggers
          const a = newOrg()
          const { secret, trigger } = yield* forOrg(a)(triggers.create(webhook()))
          const old = Redacted.value(Option.getOrThrow(secret))
          const rotated = yield* forOrg(a)(triggers.rotateSecret(trigger.id, new Date(T0 + 60_000).toISOString()))
          const fresh = Redacted.value(Option.getOrThrow(rotated))
          assert.notStrictEqual(fresh, old)
          assert.deepStrictEqual((yield* forOrg(a)(triggers.secrets(trigger.id))).map(Redacted.value), [fresh, old])
          assert.strictEqual(Option.getOrThrow(yield* forOrg(a)(triggers.get(trigger.id))).previousSecretExpiresAt, new Date(T0 + 60_000).toISOString())
          yield* TestClock.adjust("61 seconds")
          assert.deepStrictEqual((yield* forOrg(a)(triggers.secrets(trigger.id))).map(Redacted.value), [fresh])
        }))

      it.effect("deliveries: the first of an id is accepted, a repeat returns its run, the rate limit holds per minute", () =>
        Effect.gen(function* () {
          const triggers = yield* Triggers
          const a = newOrg()
          const { trigger } = yield* forOrg(a)(triggers.create(webhook({ rateLimitPerMinute: 2 })))
          const record = (deliveryId: string, runId: string) =>
            forOrg(a)(triggers.recordDelivery({ triggerId: trigger.id, deliveryId, runId, limitPerMinute: 2 }))
          assert.deepStrictEqual(yield* record("msg_1", "run-1"), { _tag: "Accepted" })
          assert.deepStrictEqual(yield* record("msg_1", "run-x"), { _tag: "Duplicate", runId: "run-1" })
          yield* TestClock.adjust("10 seconds")
          assert.deepStrictEqual(yield* record("msg_2", "run-2"), { _tag: "Accepted" })
          assert.deepStrictEqual(yield* record("msg_3", "run-3"), { _tag: "Limited", retryAfterSeconds: 50 })
          // A repeat is answered even while limited.
          assert.deepStrictEqual(yield* record("msg_2", "run-y"), { _tag: "Duplicate", runId: "run-2" })
          yield* TestClock.adjust("51 seconds")
          assert.deepStrictEqual(yield* record("msg_3", "run-3"), { _tag: "Accepted" })
          yield* forOrg(a)(triggers.forgetDelivery(trigger.id, "msg_3"))
          assert.deepStrictEqual(yield* record("msg_3", "run-4"), { _tag: "Accepted" })
          // Another org cannot record deliveries of this trigger.
          const refused = yield* Effect.either(forOrg(newOrg())(triggers.recordDelivery({ triggerId: trigger.id, deliveryId: "m", runId: "r", limitPerMinute: 5 })))
          assert.isTrue(refused._tag === "Left")
        }))

      it.effect("deliveries older than the retention are dropped, but a trigger's newest (a schedule's last fire) stays", () =>
        Effect.gen(function* () {
          const triggers = yield* Triggers
          const a = newOrg()
          const { trigger } = yield* forOrg(a)(triggers.create(schedule({ cron: "* * * * *", timezone: "UTC" })))
          const record = (deliveryId: string) =>
            forOrg(a)(triggers.recordDelivery({ triggerId: trigger.id, deliveryId, runId: `run-${deliveryId}`, limitPerMinute: 100 }))
          assert.deepStrictEqual(yield* record("2026-03-01T10:00:00.000Z"), { _tag: "Accepted" })
          assert.deepStrictEqual(yield* record("2026-03-01T10:01:00.000Z"), { _tag: "Accepted" })
          yield* TestClock.adjust("2 hours")
          // A late fire with an older id: both earlier ones leave, the newest id stays.
          assert.deepStrictEqual(yield* record("2026-03-01T09:59:00.000Z"), { _tag: "Accepted" })
          assert.deepStrictEqual(yield* record("2026-03-01T10:00:00.000Z"), { _tag: "Accepted" })
          assert.deepStrictEqual(yield* record("2026-03-01T10:01:00.000Z"), { _tag: "Duplicate", runId: "run-2026-03-01T10:01:00.000Z" })
          const entry = (yield* triggers.schedules).find((s) => s.triggerId === trigger.id)
          assert.strictEqual(entry?.lastFire, "2026-03-01T10:01:00.000Z")
        }))

      it.effect("concurrent deliveries of one id record exactly one", () =>
        Effect.gen(function* () {
          const triggers = yield* Triggers
          const a = newOrg()
          const { trigger } = yield* forOrg(a)(triggers.create(webhook({ rateLimitPerMinute: 100 })))
          const outcomes = yield* Effect.forEach(
            Array.from({ length: 8 }, (_, i) => `run-${i}`),
            (runId) => forOrg(a)(triggers.recordDelivery({ triggerId: trigger.id, deliveryId: "same", runId, limitPerMinute: 100 })),
            { concurrency: "unbounded" }
          )
          const accepted = outcomes.filter((o) => o._tag === "Accepted")
          assert.strictEqual(accepted.length, 1)
          const winner = `run-${outcomes.findIndex((o) => o._tag === "Accepted")}`
          for (const o of outcomes) if (o._tag === "Duplicate") assert.strictEqual(o.runId, winner)
        }))

      it.effect("schedules of every org are listed with their org and newest fire; a schedule has no secret", () =>
        Effect.gen(function* () {
          const triggers = yield* Triggers
          const a = newOrg()
          const b = newOrg()
          const sa = yield* forOrg(a)(triggers.create(schedule()))
          const sb = yield* forOrg(b)(triggers.create(schedule({ missed: "run_once", cron: "*/5 * * * * *", timezone: "UTC" })))
          assert.isTrue(Option.isNone(sa.secret))
          assert.strictEqual(sa.trigger.missed, "skip")
          assert.deepStrictEqual(yield* forOrg(a)(triggers.secrets(sa.trigger.id)), [])
          yield* forOrg(b)(triggers.recordDelivery({ triggerId: sb.trigger.id, deliveryId: "2026-03-01T10:00:05.000Z", runId: "r1", limitPerMinute: 1000 }))
          yield* forOrg(b)(triggers.recordDelivery({ triggerId: sb.trigger.id, deliveryId: "2026-03-01T10:00:10.000Z", runId: "r2", limitPerMinute: 1000 }))
          const all = yield* triggers.schedules
          const ea = all.find((s) => s.triggerId === sa.trigger.id)
          const eb = all.find((s) => s.triggerId === sb.trigger.id)
          assert.deepStrictEqual(ea, {
            orgId: a,
            triggerId: sa.trigger.id,
            workflowId: sa.trigger.workflowId,
            cron: "0 3 * * *",
            timezone: "Europe/Paris",
            missed: "skip",
            inputs: { depth: 2 },
            createdAt: new Date(T0).toISOString(),
            lastFire: undefined
          })
          assert.strictEqual(eb?.orgId, b)
          assert.strictEqual(eb?.missed, "run_once")
          assert.strictEqual(eb?.lastFire, "2026-03-01T10:00:10.000Z")
          // Webhooks are not schedules.
          const w = yield* forOrg(a)(triggers.create(webhook()))
          assert.isUndefined((yield* triggers.schedules).find((s) => s.triggerId === w.trigger.id))
        }))

      it.effect("refuses a nameless trigger, a schedule without cron or zone, and a rate limit below 1", () =>
        Effect.gen(function* () {
          const triggers = yield* Triggers
          const a = newOrg()
          for (const bad of [webhook({ name: "  " }), schedule({ cron: undefined }), schedule({ timezone: undefined }), webhook({ rateLimitPerMinute: 0 })]) {
            const result = yield* Effect.either(forOrg(a)(triggers.create(bad)))
            assert.isTrue(result._tag === "Left" && result.left._tag === "TriggerError")
          }
          assert.deepStrictEqual(yield* forOrg(a)(triggers.list), [])
        }))
    })
  })
