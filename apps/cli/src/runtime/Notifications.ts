/**
 * Gate notifications, budget alerts and the cost views of every deployment that serves the HTTP
 * API (docs/notifications.md, docs/cost.md), chosen here: the SQL `NotificationStore` and
 * `UsageStore` over the deployment's own `SqlClient`, the notifier's settings, and the notifier
 * passing in the background.
 *
 * - Channel secrets are sealed under the master key: the cloud's `RELAVIUM_MASTER_KEY(S)`; the
 *   monolith's own key, made once in its data directory (`notifications.key`, 0600).
 * - Gate links are signed with a key derived from the server's bearer token (HMAC-SHA256 of a
 *   fixed label), the same in every api replica, never stored.
 * - The links point at `RELAVIUM_PUBLIC_URL`, else at the server's own address.
 */
import { Effect, Layer, Option, Redacted } from "effect"
import { createHmac, randomBytes } from "node:crypto"
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Monolith, Notifier } from "@relavium/server"
import { SqlNotifications } from "@relavium/store"
import type { MasterKeySettings } from "./Settings.js"
import * as Settings from "./Settings.js"

export interface NotificationsOptions {
  readonly masterKey: Option.Option<MasterKeySettings>
  /** The server's bearer token: the gate links' key is derived from it. */
  readonly token: Redacted.Redacted<string>
  /** Where the links point when `RELAVIUM_PUBLIC_URL` is not set. */
  readonly ownUrl: string
}

export const linkKeyOf = (token: Redacted.Redacted<string>): Redacted.Redacted<string> =>
  Redacted.make(createHmac("sha256", Redacted.value(token)).update("relavium gate links v1").digest("base64url"))

/** The stores and the notifier (passing in the background); needs the deployment's `SqlClient`, engine and audit log. */
export const notificationsLayer = (options: NotificationsOptions) =>
  Layer.unwrapEffect(
    Effect.map(Settings.publicUrl, (publicUrl) => {
      const stores = Layer.mergeAll(
        SqlNotifications.layer(options.masterKey),
        SqlNotifications.layerUsage,
        Layer.succeed(Notifier.NotifySettings, { linkKey: linkKeyOf(options.token), publicUrl: Option.getOrElse(publicUrl, () => options.ownUrl) })
      )
      return Layer.provideMerge(Notifier.layerRunning, Layer.provideMerge(Notifier.layer, stores))
    })
  )

/** The monolith's master key for channel secrets: `DATA_DIR/notifications.key`, made once. */
export const monolithMasterKey = (dataDir: string): Effect.Effect<Option.Option<MasterKeySettings>, Monolith.MonolithError> =>
  Effect.try({
    try: () => {
      const file = join(dataDir, "notifications.key")
      if (!existsSync(file)) writeFileSync(file, `${randomBytes(32).toString("base64")}\n`, { mode: 0o600 })
      chmodSync(file, 0o600)
      return Option.some({ masterKey: Redacted.make(readFileSync(file, "utf8").trim()) })
    },
    catch: (e) => new Monolith.MonolithError({ message: `cannot read or create the notifications key in ${dataDir}: ${String(e)}` })
  })
