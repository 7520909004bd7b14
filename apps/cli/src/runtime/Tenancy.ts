/**
 * The organisations, members, API tokens and audit trail of every deployment
 * that serves the HTTP API (`Tenancy` and `AuditLog` of @relavium/ports), chosen
 * in this one place: the monolith (Monolith.ts) and the api replicas
 * (CloudApi.ts) both take them from here.
 *
 * For now both ports live in memory (`layerTenancyMemory`: the org `local`
 * exists, nothing else survives a restart). The SQL layer — `SqlTenancy.layer`
 * of @relavium/store over the deployment's `SqlClient` (SQLite in the data
 * directory, Postgres in the cloud) — replaces it here; the compositions
 * provide it before their store layer, so its `SqlClient` comes from there.
 */
import type { Layer } from "effect"
import { type AuditLog, layerTenancyMemory, type Tenancy } from "@relavium/ports"

export const tenancyLayer = (): Layer.Layer<Tenancy | AuditLog> => layerTenancyMemory
