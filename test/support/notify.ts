/**
 * The notification and usage stores a test server needs beside the others: the SQL stores on the
 * server's own `SqlClient` (no master key unless given: channels with secrets are then refused),
 * and the notifier's settings with a random link key.
 */
import { Layer, Option, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { Notifier } from "@relavium/server"
import { SqlNotifications } from "@relavium/store"

export const notificationStores = (options: { readonly publicUrl?: string; readonly masterKey?: string; readonly linkKey?: Redacted.Redacted<string> } = {}) =>
  Layer.mergeAll(
    SqlNotifications.layer(options.masterKey === undefined ? Option.none() : Option.some({ masterKey: Redacted.make(options.masterKey) })),
    SqlNotifications.layerUsage,
    Layer.succeed(Notifier.NotifySettings, {
      linkKey: options.linkKey ?? Redacted.make(randomBytes(32).toString("base64url")),
      publicUrl: options.publicUrl ?? "http://127.0.0.1"
    })
  )
