// JSON in nbtrack's dialect: standard JSON plus the bare tokens NaN, Infinity and -Infinity, which
// the server's JSONString fields (config, summaryMetrics, chart) carry because a logged value must
// round-trip exactly. JSON.parse refuses those tokens, so:
//   1. JSON.parse first: almost every payload is plain JSON, and the native parser is fastest;
//   2. on a SyntaxError, this file's small parser, which accepts the three tokens outside strings
//      and is otherwise as strict as JSON.parse (strings are still decoded by JSON.parse).
// Replacing the tokens in the text and parsing again would need a sentinel no user string can
// equal; parsing them directly needs none.

/** The value of `text`, NaN and ±Infinity included; SyntaxError on anything else that is not JSON. */
export function parseJSON(text) {
  try {
    return JSON.parse(text);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    return new TolerantParser(String(text)).document();
  }
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const SPACE = /[ \t\n\r]*/y;
const TOKENS = [
  ["NaN", NaN],
  ["-Infinity", -Infinity],
  ["Infinity", Infinity],
  ["true", true],
  ["false", false],
  ["null", null],
];

class TolerantParser {
  constructor(text) {
    this.text = text;
    this.at = 0;
  }

  document() {
    const value = this.value();
    this.space();
    if (this.at !== this.text.length) this.fail("unexpected text after the value");
    return value;
  }

  fail(what) {
    throw new SyntaxError(`${what} at position ${this.at} of nbtrack JSON`);
  }

  space() {
    SPACE.lastIndex = this.at;
    SPACE.test(this.text);
    this.at = SPACE.lastIndex;
  }

  match(pattern) {
    pattern.lastIndex = this.at;
    const found = pattern.exec(this.text);
    if (!found) return null;
    this.at = pattern.lastIndex;
    return found[0];
  }

  value() {
    this.space();
    const c = this.text[this.at];
    if (c === "{") return this.object();
    if (c === "[") return this.array();
    if (c === '"') return this.string();
    for (const [token, value] of TOKENS) {
      if (this.text.startsWith(token, this.at)) {
        this.at += token.length;
        return value;
      }
    }
    const number = this.match(NUMBER);
    if (number === null) this.fail("expected a value");
    return Number(number);
  }

  string() {
    const raw = this.match(STRING);
    if (raw === null) this.fail("bad string");
    return JSON.parse(raw);
  }

  array() {
    this.at++; // [
    const items = [];
    this.space();
    if (this.text[this.at] === "]") {
      this.at++;
      return items;
    }
    for (;;) {
      items.push(this.value());
      this.space();
      const c = this.text[this.at++];
      if (c === "]") return items;
      if (c !== ",") this.fail("expected , or ]");
    }
  }

  object() {
    this.at++; // {
    const result = {};
    this.space();
    if (this.text[this.at] === "}") {
      this.at++;
      return result;
    }
    for (;;) {
      this.space();
      if (this.text[this.at] !== '"') this.fail("expected a key");
      const key = this.string();
      this.space();
      if (this.text[this.at++] !== ":") this.fail("expected :");
      // defineProperty, not assignment: a key "__proto__" is data, as it is for JSON.parse.
      Object.defineProperty(result, key, { value: this.value(), enumerable: true, writable: true, configurable: true });
      this.space();
      const c = this.text[this.at++];
      if (c === "}") return result;
      if (c !== ",") this.fail("expected , or }");
    }
  }
}
