// Calico's label selectors (IPPool nodeSelector and namespaceSelector):
// parseSelector() turns the text into a tree, selects() evaluates it against
// a set of labels. Pure.
//
//   selector   := or                     ("" or blanks alone: all())
//   or         := and ("||" and)*
//   and        := unary ("&&" unary)*
//   unary      := "!" unary | "(" or ")" | "all()" | "has(" key ")" | match
//   match      := key ("==" | "!=") value
//               | key ("in" | "not in") "{" [value ("," value)*] "}"
//               | key ("contains" | "starts with" | "ends with") value
//   key        := [A-Za-z0-9_./-]+          value := '...' | "..."
//
// As in Calico, `k != 'v'` and `k not in {...}` also select labels without k.

export type Labels = Readonly<Record<string, string>>;

export type Selector =
  | { op: "all" }
  | { op: "has"; key: string }
  | { op: "==" | "!=" | "contains" | "starts with" | "ends with"; key: string; value: string }
  | { op: "in" | "not in"; key: string; values: string[] }
  | { op: "!"; selector: Selector }
  | { op: "&&" | "||"; left: Selector; right: Selector };

export class SelectorError extends Error {
  override readonly name = "SelectorError";
}

const KEY = /[A-Za-z0-9_./-]+/y;
const BLANKS = /\s*/y;

/** Longer selectors, or ones nested deeper, are refused: parsing and matching recurse. */
export const MAX_SELECTOR_LENGTH = 4096;
export const MAX_SELECTOR_DEPTH = 64;

/** Parses Calico's selector syntax; throws SelectorError naming what was expected and where. */
export function parseSelector(text: string): Selector {
  if (text.length > MAX_SELECTOR_LENGTH) {
    throw new SelectorError(
      `selector is ${text.length} characters; at most ${MAX_SELECTOR_LENGTH}`,
    );
  }
  const parser = new Parser(text);
  parser.skipBlanks();
  if (parser.atEnd()) return { op: "all" };
  const selector = parser.or();
  parser.skipBlanks();
  if (!parser.atEnd()) throw parser.error("expected '&&', '||' or the end");
  return selector;
}

/** Whether `selector` selects an object with these labels. */
export function selects(selector: Selector, labels: Labels): boolean {
  const has = (key: string) => Object.hasOwn(labels, key);
  switch (selector.op) {
    case "all":
      return true;
    case "has":
      return has(selector.key);
    case "==":
      return has(selector.key) && labels[selector.key] === selector.value;
    case "!=":
      return !has(selector.key) || labels[selector.key] !== selector.value;
    case "contains":
      return has(selector.key) && (labels[selector.key] ?? "").includes(selector.value);
    case "starts with":
      return has(selector.key) && (labels[selector.key] ?? "").startsWith(selector.value);
    case "ends with":
      return has(selector.key) && (labels[selector.key] ?? "").endsWith(selector.value);
    case "in":
      return has(selector.key) && selector.values.includes(labels[selector.key] ?? "");
    case "not in":
      return !has(selector.key) || !selector.values.includes(labels[selector.key] ?? "");
    case "!":
      return !selects(selector.selector, labels);
    case "&&":
      return selects(selector.left, labels) && selects(selector.right, labels);
    case "||":
      return selects(selector.left, labels) || selects(selector.right, labels);
  }
}

class Parser {
  #at = 0;

  constructor(private readonly text: string) {}

  atEnd(): boolean {
    return this.#at >= this.text.length;
  }

  skipBlanks(): void {
    BLANKS.lastIndex = this.#at;
    BLANKS.exec(this.text);
    this.#at = BLANKS.lastIndex;
  }

  error(expected: string): SelectorError {
    const found = this.atEnd() ? "the end" : `'${this.text.slice(this.#at, this.#at + 10)}'`;
    return new SelectorError(`${expected} at character ${this.#at + 1}, found ${found}`);
  }

  or(): Selector {
    let left = this.and();
    while (this.#take("||")) left = { op: "||", left, right: this.and() };
    return left;
  }

  and(): Selector {
    let left = this.unary();
    while (this.#take("&&")) left = { op: "&&", left, right: this.unary() };
    return left;
  }

  unary(): Selector {
    if (this.#take("!")) return { op: "!", selector: this.#nested(() => this.unary()) };
    if (this.#take("(")) {
      const inner = this.#nested(() => this.or());
      if (!this.#take(")")) throw this.error("expected ')'");
      return inner;
    }
    if (this.#take("all()")) return { op: "all" };
    if (this.#take("has(")) {
      const key = this.#key();
      if (!this.#take(")")) throw this.error("expected ')' after the label in has(");
      return { op: "has", key };
    }
    const key = this.#key();
    for (const op of ["==", "!=", "contains", "starts with", "ends with"] as const) {
      if (this.#take(op)) return { op, key, value: this.#value(op) };
    }
    for (const op of ["in", "not in"] as const) {
      if (this.#take(op)) return { op, key, values: this.#set(op) };
    }
    throw this.error(
      `expected '==', '!=', 'in', 'not in', 'contains', 'starts with' or 'ends with' after '${key}'`,
    );
  }

  #depth = 0;

  #nested(parse: () => Selector): Selector {
    if (++this.#depth > MAX_SELECTOR_DEPTH) {
      throw this.error(`nested deeper than ${MAX_SELECTOR_DEPTH} ('!' and parentheses)`);
    }
    const selector = parse();
    this.#depth--;
    return selector;
  }

  /** Takes `token` (after blanks) if it comes next; a word must end there. */
  #take(token: string): boolean {
    this.skipBlanks();
    if (!this.text.startsWith(token, this.#at)) return false;
    const end = this.#at + token.length;
    if (/[A-Za-z]$/.test(token) && /[A-Za-z0-9_./-]/.test(this.text[end] ?? "")) return false;
    this.#at = end;
    return true;
  }

  #key(): string {
    this.skipBlanks();
    KEY.lastIndex = this.#at;
    const match = KEY.exec(this.text);
    if (!match) throw this.error("expected a label, all(), has(label), '!' or '('");
    this.#at = KEY.lastIndex;
    return match[0];
  }

  #value(after: string): string {
    this.skipBlanks();
    const quote = this.text[this.#at];
    if (quote !== "'" && quote !== '"')
      throw this.error(`expected a quoted value after '${after}'`);
    const end = this.text.indexOf(quote, this.#at + 1);
    if (end < 0) throw this.error(`expected a closing ${quote}`);
    const value = this.text.slice(this.#at + 1, end);
    this.#at = end + 1;
    return value;
  }

  #set(after: string): string[] {
    if (!this.#take("{")) throw this.error(`expected '{' after '${after}'`);
    const values: string[] = [];
    if (this.#take("}")) return values;
    do values.push(this.#value(values.length === 0 ? "{" : ","));
    while (this.#take(","));
    if (!this.#take("}")) throw this.error("expected ',' or '}'");
    return values;
  }
}
