/**
 * The organisations, members, API tokens and audit trail of every deployment
 * that serves the HTTP API (`Tenancy` and `AuditLog` of @relavium/ports), chosen
 * in this one place: the monolith (Monolith.ts) and the api replicas
 * (CloudApi.ts) both take them from here — the SQL store over the deployment's
 * own `SqlClient` (SQLite in the data directory, Postgres in the cloud), which
 * the compositions provide below it. The org `local` (the single-user
 * deployments' org) exists from migration 7 on.
 */
import { SqlTenancy, SqlTriggers } from "@relavium/store"
import type { MasterKeySettings } from "./Settings.js"

/** Needs the deployment's `SqlClient`. */
export const tenancyLayer = SqlTenancy.layer

/**
 * Webhook and schedule triggers (docs/triggers.md) on the deployment's `SqlClient`; webhook
 * secrets sealed under the org's data key, wrapped under these master keys (the cloud's
 * `RELAVIUM_MASTER_KEY(S)`, the monolith's key file). Without them webhook triggers are refused.
 */
export const triggersLayer = (masterKeys: MasterKeySettings | undefined) => SqlTriggers.layer(masterKeys)
