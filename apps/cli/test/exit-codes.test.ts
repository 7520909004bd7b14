/**
 * The exit-code tables are total over their error unions: an error without an
 * exit code does not type-check (the `@ts-expect-error` lines below fail the
 * type check if that ever stops being true), and the tables give the codes
 * users and scripts rely on.
 */
import { describe, expect, it } from "vitest"
import { UnknownChat } from "@relavium/chat"
import { chatErrors, endingOf, type Endings, ExitCode, isOneOf, localErrors, type LocalError, serverProcessErrors } from "../src/ExitCodes.js"

describe("exit codes", () => {
  it("cover every error of a union, and only those", () => {
    // @ts-expect-error a table that forgets an error of the union is a type error
    const missing: Endings<LocalError> = { StoreError: { exit: 2, code: "store" }, CassetteError: { exit: 2, code: "validation" }, PricingError: { exit: 2, code: "validation" } }
    const extra: Endings<LocalError> = {
      ...localErrors,
      // @ts-expect-error an error outside the union is a type error too
      NotAnError: { exit: 1, code: "failed" }
    }
    expect(Object.keys(missing)).toHaveLength(3)
    expect(Object.keys(extra)).toHaveLength(5)
  })

  it("keep the codes of chat errors: 3 while a tool call waits, 2 with a code for everything else", () => {
    expect(chatErrors.ApprovalRequired).toEqual({ exit: ExitCode.paused, code: "approval_required" })
    expect(Object.entries(chatErrors).filter(([, e]) => e.exit !== ExitCode.invalid).map(([tag]) => tag)).toEqual(["ApprovalRequired"])
    expect(endingOf(chatErrors, new UnknownChat({ chatId: "c1", message: "no chat c1" }))).toEqual({ exit: ExitCode.invalid, code: "not_found" })
    expect(chatErrors.ChatBusy.code).toBe("conflict")
    expect(chatErrors.ChatStorageError.code).toBe("store")
  })

  it("tell bad settings (2) from services that cannot be reached (1)", () => {
    expect(serverProcessErrors.Misconfigured.exit).toBe(ExitCode.invalid)
    for (const [tag, ending] of Object.entries(serverProcessErrors)) if (tag !== "Misconfigured") expect(ending.exit, tag).toBe(ExitCode.failed)
  })

  it("recognise only tagged errors of the table", () => {
    const isChatError = isOneOf(chatErrors)
    expect(isChatError({ _tag: "UnknownChat", message: "x" })).toBe(true)
    expect(isChatError({ _tag: "StoreError", message: "x" })).toBe(false)
    expect(isChatError(new Error("plain"))).toBe(false)
    expect(endingOf(localErrors, { _tag: "toString" })).toBeUndefined()
  })
})
