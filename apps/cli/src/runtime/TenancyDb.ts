/**
 * The tenancy stores of `relavium org|token|member|audit --database-url URL`:
 * the operator's direct way to an organisation's members, tokens and audit
 * trail, without a server. The one place that turns a database URL into
 * `Tenancy` and `AuditLog`.
 *
 * `postgres://…` (or `postgresql://…`) opens Postgres, `sqlite:FILE` (or a
 * plain file path) SQLite; either is migrated to this build's schema first,
 * as `relavium db migrate` and the local commands do.
 */
import { Layer, Redacted } from "effect"
import type { AuditLog, StoreError, Tenancy } from "@relavium/ports"
import { Database, SqlTenancy } from "@relavium/store"

/** The store database behind `url`, opened and migrated. */
const database = (url: Redacted.Redacted<string>) => {
  const plain = Redacted.value(url).trim()
  return /^postgres(ql)?:\/\//i.test(plain)
    ? Database.layerPg({ url, migrate: "apply" })
    : Database.layerSqlite({ filename: plain.replace(/^sqlite:(\/\/)?/i, "") })
}

export const layer = (url: Redacted.Redacted<string>): Layer.Layer<Tenancy | AuditLog, StoreError> =>
  SqlTenancy.layer.pipe(Layer.provide(database(url)))
