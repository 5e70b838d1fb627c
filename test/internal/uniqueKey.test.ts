import { createHash } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import type { UniqueOptions } from "../../src/InsertOptions.ts"
import * as InsertOptions from "../../src/internal/insertOptions.ts"
import {
  compareUtf8,
  goJson,
  goString,
  normalizePaths,
  periodBound,
  type ResolvedUnique,
  riverObjectKey,
  splitPath,
  uniqueKeyHash,
  uniqueKeyHex,
  uniqueKeyString
} from "../../src/internal/uniqueKey.ts"
import * as JobKind from "../../src/JobKind.ts"

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex")

const NOW = Date.parse("2026-01-02T03:04:05.678Z")

const unique = (options: UniqueOptions): ResolvedUnique => {
  const resolved = InsertOptions.resolveUnique(options)
  if (resolved === undefined) throw new Error("not unique")
  return resolved
}

const key = (
  options: UniqueOptions,
  input: { kind?: string; args?: unknown; argsJson?: string; queue?: string; scheduledAt?: string } = {}
) =>
  uniqueKeyString(unique(options), {
    kind: input.kind ?? "send_email",
    argsJson: input.argsJson ?? JSON.stringify(input.args ?? {}),
    queue: input.queue ?? "default",
    scheduledAtMillis: input.scheduledAt === undefined ? undefined : Date.parse(input.scheduledAt),
    nowMillis: NOW
  })

describe("unique key: Go encoding/json rendering", () => {
  it("escapes strings as Go does (HTML-safe, U+2028/U+2029, \\b \\f, lowercase \\u00XX)", () => {
    assert.strictEqual(goString("<a href=\"x\">&amp;</a>"), String.raw`"\u003ca href=\"x\"\u003e\u0026amp;\u003c/a\u003e"`)
    assert.strictEqual(goString("line\u2028paragraph\u2029end"), String.raw`"line\u2028paragraph\u2029end"`)
    assert.strictEqual(goString("\b\f\n\r\t\x00\x01\x1f\x7f"), String.raw`"\b\f\n\r\t\u0000\u0001\u001f` + "\x7f\"")
    assert.strictEqual(goString("é😀/\\"), String.raw`"é😀/\\"`)
    // Invalid UTF-8 (a lone surrogate here) becomes the \ufffd escape in Go.
    assert.strictEqual(goString("a\ud800b\udc00"), String.raw`"a\ufffdb\ufffd"`)
  })

  it("writes numbers like Go's float64 encoder, objects compact in their own key order", () => {
    assert.strictEqual(goJson(-0), "-0")
    assert.strictEqual(goJson(1e21), "1e+21")
    assert.strictEqual(goJson(1e20), "100000000000000000000")
    assert.strictEqual(goJson(1e-7), "1e-7")
    assert.strictEqual(goJson(1e-6), "0.000001")
    assert.strictEqual(goJson(0.1), "0.1")
    assert.strictEqual(goJson(9007199254740991), "9007199254740991")
    assert.strictEqual(goJson({ z: 1, a: [true, null, "<"], m: { "a<b": {} } }), String.raw`{"z":1,"a":[true,null,"\u003c"],"m":{"a\u003cb":{}}}`)
  })

  it("writes keys of River-built objects verbatim unless they need Go's encoder (sjson's rule)", () => {
    assert.strictEqual(riverObjectKey("a<b"), `"a<b"`)
    assert.strictEqual(riverObjectKey("a&b"), `"a&b"`)
    assert.strictEqual(riverObjectKey("é<"), String.raw`"é\u003c"`)
    assert.strictEqual(riverObjectKey("a\"b"), String.raw`"a\"b"`)
    assert.strictEqual(riverObjectKey("line\n"), String.raw`"line\n"`)
    assert.strictEqual(riverObjectKey("a\u2028b"), String.raw`"a\u2028b"`)
  })

  it("orders keys by UTF-8 bytes, not UTF-16 code units", () => {
    const keys = ["zero", "😀", "\ue000", "2", "10", "", "Z", "é"]
    assert.deepStrictEqual([...keys].sort(compareUtf8), ["", "10", "2", "Z", "zero", "é", "\ue000", "😀"])
    assert.deepStrictEqual([...keys].sort().slice(-2), ["😀", "\ue000"], "UTF-16 order differs")
  })

  it("splits chosen paths at unescaped dots and sorts them as River sorts its joined paths", () => {
    assert.deepStrictEqual(splitPath("account.id"), ["account", "id"])
    assert.deepStrictEqual(splitPath(String.raw`user\.id`), ["user.id"])
    assert.deepStrictEqual(normalizePaths(["label", "account.id", "label", "account_x"]), [["account", "id"], [
      "account_x"
    ], ["label"]])
  })
})

describe("unique key: period", () => {
  it("truncates from Go's zero time (0001-01-01), not the Unix epoch", () => {
    // 0001-01-01 is a Monday and 1970-01-01 a Thursday: 7-day periods start on Mondays.
    const week = 7n * 24n * 3600n * 1_000_000_000n
    assert.strictEqual(periodBound(Date.parse("2026-01-02T03:04:05Z"), week), "2025-12-29T00:00:00Z")
    assert.strictEqual(periodBound(Date.parse("2025-12-29T00:00:00Z"), week), "2025-12-29T00:00:00Z")
    assert.strictEqual(periodBound(Date.parse("2025-12-28T23:59:59.999Z"), week), "2025-12-22T00:00:00Z")
  })

  it("formats RFC 3339 in UTC without fractional seconds", () => {
    const hour = 3600n * 1_000_000_000n
    assert.strictEqual(periodBound(Date.parse("2026-01-02T03:59:59.999Z"), hour), "2026-01-02T03:00:00Z")
    assert.strictEqual(periodBound(Date.parse("2026-01-02T04:00:00.000Z"), hour), "2026-01-02T04:00:00Z")
    assert.strictEqual(periodBound(Date.parse("2026-01-02T03:04:05.678Z"), 1_000_000_000n), "2026-01-02T03:04:05Z")
    // A period that is not whole seconds: the bound keeps its fraction, RFC 3339 drops it.
    // 2026-01-02T03:04:05Z is 63,902,919,845 s after Go's zero time: 42,601,946,563 periods
    // of 1.5 s plus 0.5 s, so the bound is 03:04:04.5 -> "03:04:04".
    assert.strictEqual(periodBound(Date.parse("2026-01-02T03:04:05.000Z"), 1_500_000_000n), "2026-01-02T03:04:04Z")
    assert.strictEqual(periodBound(Date.parse("0001-01-01T00:00:00Z"), 1_000_000_000n), "0001-01-01T00:00:00Z")
  })
})

describe("unique key: strings", () => {
  it("kind first, then args, period, queue", () => {
    assert.strictEqual(
      key({ byArgs: true, byPeriod: "1 hour", byQueue: true }, { args: { to: "a@x", n: 1 }, queue: "email" }),
      `&kind=send_email&args={"n":1,"to":"a@x"}&period=2026-01-02T03:00:00Z&queue=email`
    )
    assert.strictEqual(key({ byQueue: true }, { queue: "email" }), "&kind=send_email&queue=email")
    assert.strictEqual(key({ byQueue: true, excludeKind: true }, { queue: "email" }), "&queue=email")
    assert.strictEqual(key({ byState: ["available", "pending", "running", "scheduled"] }), "&kind=send_email")
    assert.strictEqual(key({ byState: ["available", "pending", "running", "scheduled"], excludeKind: true }), "")
  })

  it("period from scheduledAt when set, else now", () => {
    assert.strictEqual(key({ byPeriod: "15 minutes" }), "&kind=send_email&period=2026-01-02T03:00:00Z")
    assert.strictEqual(
      key({ byPeriod: "15 minutes" }, { scheduledAt: "2026-03-04T05:59:00+02:00" }),
      "&kind=send_email&period=2026-03-04T03:45:00Z"
    )
  })

  it("all args: top-level keys sorted, values as Go encodes them", () => {
    assert.strictEqual(
      key({ byArgs: true }, { args: { zeta: "z", alpha: "<a>&", nested: { z: 1, a: 2 }, list: [1, "x"] } }),
      String.raw`&kind=send_email&args={"alpha":"\u003ca\u003e\u0026","list":[1,"x"],"nested":{"a":2,"z":1},"zeta":"z"}`,
      "without a schema a nested object is a map: keys sorted, as Go writes a map[string]any"
    )
    assert.strictEqual(key({ byArgs: true }, { args: {} }), "&kind=send_email&args={}")
    assert.strictEqual(
      key({ byArgs: true }, { argsJson: `{"a<b":1,"é<":2,"a.b":3,"":4}` }),
      String.raw`&kind=send_email&args={"":4,"a.b":3,"a<b":1,"é\u003c":2}`
    )
  })

  it("integers beyond 2^53 keep every digit, as Go's int64 does", () => {
    assert.strictEqual(
      key({ byArgs: true }, { argsJson: `{"id":1460323737035677698,"neg":[-9223372036854775808]}` }),
      `&kind=send_email&args={"id":1460323737035677698,"neg":[-9223372036854775808]}`
    )
    assert.strictEqual(
      key({ byArgs: ["id"] }, { argsJson: `{"id":1460323737035677698}` }),
      `&kind=send_email&args={"id":1460323737035677698}`
    )
  })

  it("chosen args: only those paths, nested, missing ones skipped", () => {
    const args = { account: { id: "acct", ignored: "x", region: "west" }, label: "l", ignored: true }
    assert.strictEqual(
      key({ byArgs: ["label", "account.region", "account.id", "missing", "account.missing"] }, { args }),
      `&kind=send_email&args={"account":{"id":"acct","region":"west"},"label":"l"}`
    )
    assert.strictEqual(key({ byArgs: ["account"] }, { args }), `&kind=send_email&args={"account":{"id":"acct","ignored":"x","region":"west"}}`)
    assert.strictEqual(key({ byArgs: ["nothing"] }, { args }), "&kind=send_email&args=", "no chosen key present: empty")
    assert.strictEqual(key({ byArgs: ["label"] }, { args: { label: null } }), `&kind=send_email&args={"label":null}`)
    assert.strictEqual(key({ byArgs: [String.raw`a\.b`] }, { args: { "a.b": 1, a: { b: 2 } } }), `&kind=send_email&args={"a.b":1}`)
  })

  it("hash: SHA-256 of the UTF-8 string, 32 bytes", () => {
    const s = key({ byArgs: true }, { args: { é: "😀" } })
    assert.strictEqual(uniqueKeyHex(s), sha256(s))
    assert.strictEqual(uniqueKeyHash(s).length, 32)
    assert.strictEqual(Buffer.from(uniqueKeyHash(s)).toString("hex"), sha256(s))
    // Hand-checkable: sha256("&kind=send_email")
    assert.strictEqual(
      uniqueKeyHex("&kind=send_email"),
      createHash("sha256").update(Buffer.from("&kind=send_email", "ascii")).digest("hex")
    )
  })

  it("default states bitmask is 245 (11110101)", () => {
    assert.strictEqual(unique({ byArgs: true }).statesBitmask, "11110101")
    assert.strictEqual(parseInt(unique({ byArgs: true }).statesBitmask, 2), 245)
    assert.strictEqual(
      unique({ byState: ["available", "pending", "running", "scheduled", "cancelled", "discarded"] }).statesBitmask,
      "11011011"
    )
    assert.isUndefined(InsertOptions.resolveUnique({ excludeKind: true }), "excludeKind alone enables nothing")
    assert.isUndefined(InsertOptions.resolveUnique({}), "empty: not unique")
    assert.isUndefined(InsertOptions.resolveUnique({ byArgs: false, byQueue: false }))
  })
})

describe("unique key: nested objects as Go's encoding/json writes them", () => {
  const withSchema = <S extends Schema.Codec<any, any, never, never>>(
    schema: S,
    args: S["Type"],
    options: UniqueOptions = { byArgs: true }
  ) => {
    const kind = JobKind.make("nested", { args: schema })
    const json = kind.encode(args)
    if (Result.isFailure(json)) throw json.failure
    return uniqueKeyString(unique(options), {
      kind: "nested",
      argsJson: json.success,
      argsAst: kind.argsJsonAst,
      queue: "default",
      scheduledAtMillis: undefined,
      nowMillis: NOW
    })
  }

  it("a map's keys are sorted bytewise, not in JavaScript's integer-first order", () => {
    assert.strictEqual(
      key({ byArgs: true }, { argsJson: `{"m":{"10":1,"9":2,"b":3}}` }),
      `&kind=send_email&args={"m":{"10":1,"9":2,"b":3}}`
    )
    assert.strictEqual(
      withSchema(Schema.Struct({ m: Schema.Record(Schema.String, Schema.Number) }), { m: { b: 3, 9: 2, 10: 1 } }),
      `&kind=nested&args={"m":{"10":1,"9":2,"b":3}}`
    )
  })

  it("a struct the schema declares is written in field order (Go struct order), at any depth", () => {
    const Inner = Schema.Struct({ z: Schema.Number, m: Schema.Number, a: Schema.String })
    assert.strictEqual(
      withSchema(Schema.Struct({ inner: Inner, list: Schema.Array(Inner), byName: Schema.Record(Schema.String, Inner) }), {
        inner: { a: "<&>", m: 2, z: 1 },
        list: [{ z: 3, m: 4, a: "b" }],
        byName: { k2: { a: "c", m: 6, z: 5 }, k10: { z: 7, m: 8, a: "d" } }
      }),
      String.raw`&kind=nested&args={"byName":{"k10":{"z":7,"m":8,"a":"d"},"k2":{"z":5,"m":6,"a":"c"}},"inner":{"z":1,"m":2,"a":"\u003c\u0026\u003e"},"list":[{"z":3,"m":4,"a":"b"}]}`
    )
  })

  it("a union picks the member the value is, and uses its field order", () => {
    const Shape = Schema.Union([
      Schema.Struct({ kind: Schema.Literal("circle"), radius: Schema.Number, center: Schema.Number }),
      Schema.Struct({ kind: Schema.Literal("square"), side: Schema.Number, corner: Schema.Number })
    ])
    assert.strictEqual(
      withSchema(Schema.Struct({ shapes: Schema.Array(Shape) }), {
        shapes: [{ corner: 0, side: 2, kind: "square" }, { center: 0, radius: 1, kind: "circle" }]
      }),
      `&kind=nested&args={"shapes":[{"kind":"square","side":2,"corner":0},{"kind":"circle","radius":1,"center":0}]}`
    )
  })

  it("chosen paths render the selected value the same way", () => {
    const Inner = Schema.Struct({ z: Schema.Number, m: Schema.Number })
    assert.strictEqual(
      withSchema(
        Schema.Struct({ inner: Inner, map: Schema.Record(Schema.String, Schema.Number), skip: Schema.String }),
        { inner: { m: 2, z: 1 }, map: { b: 1, 10: 2, 9: 3 }, skip: "x" },
        { byArgs: ["inner", "map"] }
      ),
      `&kind=nested&args={"inner":{"z":1,"m":2},"map":{"10":2,"9":3,"b":1}}`
    )
  })

  // Computed with River v0.51.2's own dbunique.UniqueKey on json.Marshal of Go structs (nested
  // struct, map[string]int, map[string]any, slices, map of structs, int64), kinds nested_args and
  // selected_args (river:"unique" on inner and map). The args are built in a different key order
  // here on purpose: the order comes from the schema (structs) or from sorting (maps).
  it("River golden vectors with nested structs and maps", () => {
    const Inner = Schema.Struct({
      z: Schema.Number,
      m: Schema.Number,
      a: Schema.String,
      extra: Schema.optionalKey(Schema.Record(Schema.String, Schema.Number))
    })
    const Variant = Schema.Struct({ kind: Schema.String, zeta: Schema.optionalKey(Schema.Number), beta: Schema.optionalKey(Schema.Number) })
    const NestedArgs = Schema.Struct({
      label: Schema.String,
      inner: Inner,
      map: Schema.Record(Schema.String, Schema.Number),
      any: Schema.Record(Schema.String, Schema.Unknown),
      list: Schema.Array(Inner),
      vars: Schema.Array(Variant),
      records: Schema.Record(Schema.String, Inner),
      big: JobKind.Int64
    })
    const args = {
      label: "<l&>",
      inner: { a: "a", z: 1, m: 2, extra: { b: 1, "10": 2, "9": 3 } },
      map: { "10": 1, "9": 2, b: 3, "é": 4, "\ue000": 6, "😀": 5 },
      any: { z: [{ y: 1, x: 2 }], a: null, "10": true },
      list: [{ z: 3, m: 4, a: "b" }],
      vars: [{ kind: "z", zeta: 1 }, { kind: "b", beta: 2 }],
      records: { k2: { z: 5, m: 6, a: "c" }, k10: { z: 7, m: 8, a: "d" } },
      big: 1460323737035677698n
    }
    const all = withSchema(NestedArgs, args)
    assert.strictEqual(
      all,
      String.raw`&kind=nested&args={"any":{"10":true,"a":null,"z":[{"x":2,"y":1}]},"big":1460323737035677698,"inner":{"z":1,"m":2,"a":"a","extra":{"10":2,"9":3,"b":1}},"label":"\u003cl\u0026\u003e","list":[{"z":3,"m":4,"a":"b"}],"map":{"10":1,"9":2,"b":3,"é":4,"${"\ue000"}":6,"😀":5},"records":{"k10":{"z":7,"m":8,"a":"d"},"k2":{"z":5,"m":6,"a":"c"}},"vars":[{"kind":"z","zeta":1},{"kind":"b","beta":2}]}`
    )
    assert.strictEqual(
      uniqueKeyHex(all.replace("&kind=nested", "&kind=nested_args")),
      "88c3d6e4a804f15bc9fe967ad1848174b59ec3c0550ea796271d77bd5cd6f043"
    )
    const selected = withSchema(
      Schema.Struct({ inner: Inner, map: Schema.Record(Schema.String, Schema.Number), skip: Schema.String }),
      { inner: { a: "a", m: 2, z: 1 }, map: { "10": 1, "9": 2 }, skip: "x" },
      { byArgs: ["inner", "map"] }
    )
    assert.strictEqual(
      uniqueKeyHex(selected.replace("&kind=nested", "&kind=selected_args")),
      "177cbf26cef31c5b0cae51012130a7bde548b92e71b26efd880f00eace1e435f"
    )
  })
})

// Golden hashes computed by River's Go code (dbunique.UniqueKey), as published with a River
// conformance suite; the inputs are the encoded args Go produced.
describe("unique key: River golden vectors", () => {
  const now = Date.parse("2026-01-02T03:04:05.6789Z")
  const golden = (
    resolved: ResolvedUnique,
    kind: string,
    argsJson: string,
    scheduledAt?: string
  ) =>
    uniqueKeyHex(uniqueKeyString(resolved, {
      kind,
      argsJson,
      queue: "default",
      scheduledAtMillis: scheduledAt === undefined ? undefined : Date.parse(scheduledAt),
      nowMillis: now
    }))

  it("all args sorted and escaped", () => {
    const args = { zeta: "quoted \\\"value\\\" and \\\\ slash", alpha: "<alpha>&\u2028line", maximum: 9_007_199_254_740_991 }
    assert.strictEqual(
      golden(unique({ byArgs: true }), "conformance_all_args", JSON.stringify(args)),
      "7a84c62c8d470ca388a0a1e41c311b9eb1ea21f7b88157ceb876fc82e698b6af"
    )
  })

  it("map order (UTF-8 key order) and negative zero", () => {
    assert.strictEqual(
      golden(unique({ byArgs: true }), "conformance_all_args", `{"2":2,"10":10,"zero":-0,"😀":1,"\ue000":2}`),
      "fcdf33e0c39c1fc7e956876345a985f2418bd69c6e4d6a5c794abf1e78cdfdb6"
    )
  })

  it("empty args", () => {
    assert.strictEqual(
      golden(unique({ byArgs: true }), "conformance_all_args", "{}"),
      "fe05a58ddb79a8d4544da962582d9a290d59788c920afd3597da3a62e3c1b0ac"
    )
    assert.strictEqual(sha256("&kind=conformance_all_args&args={}"), "fe05a58ddb79a8d4544da962582d9a290d59788c920afd3597da3a62e3c1b0ac")
  })

  it("selected nested args", () => {
    const args = { account: { id: "acct-123", ignored: "not selected" }, ignored: true, label: "selected" }
    assert.strictEqual(
      golden(unique({ byArgs: ["account.id", "label"] }), "conformance_selected_args", JSON.stringify(args)),
      "6130dc4f753402d1faeb6bbc3e6c21415245bb282ad1fd16bcbfeebde525e726"
    )
  })

  it("selected Unicode field name", () => {
    assert.strictEqual(
      golden(unique({ byArgs: ["é"] }), "conformance_dotted_selected_args", JSON.stringify({ user: {}, é: "café" })),
      "28513f484784e6b0fe8aed6cc1fadb04498f43305b74619aa56e701a2feff578"
    )
  })

  it("periods: from now (90 min, 1 h, non-UTC offsets) and from scheduledAt", () => {
    const expectedFromNow = "5396f06a082abd7a929915135ebd363a9a47d800176b03ce7736f93a5ba9e22e" // period=2026-01-02T03:00:00Z
    assert.strictEqual(golden(unique({ byPeriod: "90 minutes" }), "conformance_simple", `{"id":42}`), expectedFromNow)
    assert.strictEqual(golden(unique({ byPeriod: "1 hour" }), "conformance_simple", `{"id":42}`), expectedFromNow)
    assert.strictEqual(sha256("&kind=conformance_simple&period=2026-01-02T03:00:00Z"), expectedFromNow)
    assert.strictEqual(
      golden(unique({ byPeriod: "1 hour" }), "conformance_simple", `{"id":42}`, "2026-01-02T10:51:05.6789+05:30"),
      "b7f3c49952996b760b8b3ff6cf48f426e03a6ef0f004fb6faa51725365cf309a"
    )
  })
})

describe("unique key: period of a scheduled job (River 0.51.2)", () => {
  // River 0.48 (PR #1377) builds the key after the effective scheduled time is known and measures
  // periods in UTC: a job scheduled 3 h ahead takes its period from `scheduledAt`. Hashes printed
  // by River v0.51.2's own `dbunique.UniqueKey` for kind send_email, byPeriod 1 h, a stubbed now of
  // 2026-01-02T03:04:05.678Z, without and with ScheduledAt = now + 3 h.
  it("without scheduledAt from now, with scheduledAt from scheduledAt", () => {
    assert.strictEqual(
      uniqueKeyHex(key({ byPeriod: "1 hour" })),
      "34aa58beee433c2b3104f5550e7a2b20bd26c7a4ad9351ccf4c6ae272658f954"
    )
    assert.strictEqual(
      uniqueKeyHex(key({ byPeriod: "1 hour" }, { scheduledAt: new Date(NOW + 3 * 3_600_000).toISOString() })),
      "3846e6335128b5d842dc7c7cc8632d2ecc6848f8845ab0cdf4360ef7c35477a8"
    )
  })
})
