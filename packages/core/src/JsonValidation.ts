/**
 * Checks a value against an `output_schema` (JSON Schema) and says what does not
 * match. Validators are compiled once per schema object.
 */
import { Validator } from "@cfworker/json-schema"

const validators = new WeakMap<object, Validator>()

export const validateJson = (schema: Readonly<Record<string, unknown>>, value: unknown): ReadonlyArray<string> => {
  let validator = validators.get(schema)
  if (validator === undefined) {
    validator = new Validator(schema as never, "2020-12", false)
    validators.set(schema, validator)
  }
  const result = validator.validate(value)
  return result.valid
    ? []
    : result.errors
        .filter((e) => e.keyword !== "properties" && e.keyword !== "items")
        .slice(0, 5)
        .map((e) => `${e.instanceLocation === "#" ? "(root)" : e.instanceLocation.slice(2)}: ${e.error}`)
}
