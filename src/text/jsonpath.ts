// kubectl's JSONPath templates (`-o jsonpath=...`), the part scripts use:
// text outside braces as it is; {.a.b}, {.items[*].metadata.name},
// {.items[0]}, {.items[-1:]}, {['a.b']}, {..name} (anywhere below), {.a.*},
// filters {.items[?(@.spec.node=="node-1")]} with ==, !=, <, >, <=, >= or a
// bare path (present and not false), string literals {"\n"}, and
// {range EXPR}...{end}. Several results of one expression are joined by a
// space; a string prints as it is, anything else as JSON. A path that finds
// nothing prints nothing, as kubectl's default (--allow-missing-template-keys).
// Iterative where input size could nest deep; a template nested past
// MAX_DEPTH is refused. Pure.

export class JsonPathError extends Error {
  override readonly name = "JsonPathError";
}

type Node =
  | { kind: "text"; text: string }
  | { kind: "path"; steps: Step[] }
  | { kind: "range"; steps: Step[]; body: Node[] };

type Step =
  | { kind: "child"; name: string }
  | { kind: "index"; index: number }
  | { kind: "slice"; start?: number; end?: number }
  | { kind: "all" }
  | { kind: "descend"; name: string | undefined }
  | { kind: "filter"; path: Step[]; op?: string; value?: unknown };

/** Filters and ranges nested deeper than this are refused. */
export const MAX_DEPTH = 16;

/** Renders `template` over `data`; throws JsonPathError for a template that does not parse. */
export function renderJsonPath(template: string, data: unknown): string {
  const nodes = parseTemplate(template);
  return render(nodes, data);
}

function render(nodes: readonly Node[], data: unknown): string {
  let out = "";
  for (const node of nodes) {
    if (node.kind === "text") out += node.text;
    else if (node.kind === "path") {
      out += evaluate(node.steps, [data]).map(format).join(" ");
    } else {
      for (const item of evaluate(node.steps, [data])) out += render(node.body, item);
    }
  }
  return out;
}

function format(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

// ---- parsing ------------------------------------------------------------------

function parseTemplate(template: string): Node[] {
  const root: Node[] = [];
  const stack: { body: Node[] }[] = [{ body: root }];
  let at = 0;
  while (at < template.length) {
    const open = template.indexOf("{", at);
    const current = stack[stack.length - 1] as { body: Node[] };
    if (open < 0) {
      current.body.push({ kind: "text", text: template.slice(at) });
      break;
    }
    if (open > at) current.body.push({ kind: "text", text: template.slice(at, open) });
    const close = closingBrace(template, open);
    const inner = template.slice(open + 1, close).trim();
    at = close + 1;
    if (inner === "end") {
      if (stack.length === 1) throw new JsonPathError("{end} without {range}");
      stack.pop();
    } else if (inner.startsWith("range ") || inner.startsWith("range\t")) {
      if (stack.length > MAX_DEPTH) {
        throw new JsonPathError(`{range} nested deeper than ${MAX_DEPTH}`);
      }
      const node: Node = { kind: "range", steps: parsePath(inner.slice(6).trim()), body: [] };
      current.body.push(node);
      stack.push(node);
    } else if (inner.startsWith('"') || inner.startsWith("'")) {
      current.body.push({ kind: "text", text: parseString(inner) });
    } else {
      current.body.push({ kind: "path", steps: parsePath(inner) });
    }
  }
  if (stack.length > 1) throw new JsonPathError("{range} without {end}");
  return root;
}

/** The index of the brace closing the one at `open`, skipping quoted text. */
function closingBrace(template: string, open: number): number {
  let quote: string | undefined;
  for (let at = open + 1; at < template.length; at++) {
    const char = template[at];
    if (quote) {
      if (char === "\\") at++;
      else if (char === quote) quote = undefined;
    } else if (char === '"' || char === "'") quote = char;
    else if (char === "}") return at;
  }
  throw new JsonPathError(`unclosed { at position ${open + 1}`);
}

function parseString(text: string): string {
  const quote = text[0];
  if (text.length < 2 || text[text.length - 1] !== quote) {
    throw new JsonPathError(`unterminated string ${text}`);
  }
  return text
    .slice(1, -1)
    .replace(/\\(.)/g, (_, char: string) =>
      char === "n" ? "\n" : char === "t" ? "\t" : char === "r" ? "\r" : char,
    );
}

function parsePath(text: string, depth = 0): Step[] {
  if (depth > MAX_DEPTH) throw new JsonPathError(`filters nested deeper than ${MAX_DEPTH}`);
  let rest = text.startsWith("$") ? text.slice(1) : text;
  const steps: Step[] = [];
  while (rest.length > 0) {
    if (rest.startsWith("..")) {
      const match = /^\.\.([A-Za-z0-9_-]+|\*)?/.exec(rest) as RegExpExecArray;
      steps.push({ kind: "descend", name: match[1] === "*" ? undefined : match[1] });
      rest = rest.slice(match[0].length);
    } else if (rest.startsWith(".*")) {
      steps.push({ kind: "all" });
      rest = rest.slice(2);
    } else if (rest.startsWith(".")) {
      const match = /^\.([A-Za-z0-9_-]+)/.exec(rest);
      if (!match) {
        if (rest === ".") break; // {.}: the item itself
        throw new JsonPathError(`cannot parse '${text}' at '${rest}'`);
      }
      steps.push({ kind: "child", name: match[1] as string });
      rest = rest.slice(match[0].length);
    } else if (rest.startsWith("[")) {
      const end = closingBracket(rest, text);
      steps.push(parseBracket(rest.slice(1, end).trim(), text, depth));
      rest = rest.slice(end + 1);
    } else {
      throw new JsonPathError(`cannot parse '${text}' at '${rest}': a path starts with '.'`);
    }
  }
  return steps;
}

function closingBracket(rest: string, text: string): number {
  let depth = 0;
  let quote: string | undefined;
  for (let at = 0; at < rest.length; at++) {
    const char = rest[at];
    if (quote) {
      if (char === "\\") at++;
      else if (char === quote) quote = undefined;
    } else if (char === '"' || char === "'") quote = char;
    else if (char === "[" || char === "(") depth++;
    else if (char === "]" || char === ")") {
      depth--;
      if (depth === 0 && char === "]") return at;
    }
  }
  throw new JsonPathError(`unclosed [ in '${text}'`);
}

function parseBracket(inside: string, text: string, depth: number): Step {
  if (inside === "*") return { kind: "all" };
  if (/^-?\d+$/.test(inside)) return { kind: "index", index: Number(inside) };
  const slice = /^(-?\d+)?:(-?\d+)?$/.exec(inside);
  if (slice) {
    return {
      kind: "slice",
      ...(slice[1] !== undefined ? { start: Number(slice[1]) } : {}),
      ...(slice[2] !== undefined ? { end: Number(slice[2]) } : {}),
    };
  }
  if (inside.startsWith("'") || inside.startsWith('"')) {
    return { kind: "child", name: parseString(inside) };
  }
  if (inside.startsWith("?(") && inside.endsWith(")")) {
    const body = inside.slice(2, -1).trim();
    if (!body.startsWith("@")) throw new JsonPathError(`a filter starts with @ in '${text}'`);
    const at = operatorAt(body);
    if (at === undefined) {
      return { kind: "filter", path: parsePath(body.slice(1).trim(), depth + 1) };
    }
    return {
      kind: "filter",
      path: parsePath(body.slice(1, at.index).trim(), depth + 1),
      op: at.op,
      value: literal(body.slice(at.index + at.op.length).trim(), text),
    };
  }
  throw new JsonPathError(`cannot parse [${inside}] in '${text}'`);
}

/** The first comparison operator outside quotes and brackets, in one pass. */
function operatorAt(body: string): { index: number; op: string } | undefined {
  let quote: string | undefined;
  let depth = 0;
  for (let index = 0; index < body.length; index++) {
    const char = body[index] as string;
    if (quote) {
      if (char === "\\") index++;
      else if (char === quote) quote = undefined;
      continue;
    }
    if (char === '"' || char === "'") quote = char;
    else if (char === "[" || char === "(") depth++;
    else if (char === "]" || char === ")") depth--;
    else if (depth === 0) {
      const two = body.slice(index, index + 2);
      if (["==", "!=", "<=", ">="].includes(two)) return { index, op: two };
      if (char === "<" || char === ">") return { index, op: char };
    }
  }
  return undefined;
}

function literal(text: string, template: string): unknown {
  if (text.startsWith("'") || text.startsWith('"')) return parseString(text);
  if (text === "true" || text === "false") return text === "true";
  if (text === "null") return null;
  const number = Number(text);
  if (text !== "" && Number.isFinite(number)) return number;
  throw new JsonPathError(`cannot compare with ${text} in '${template}'`);
}

// ---- evaluation ---------------------------------------------------------------

function evaluate(steps: readonly Step[], values: unknown[]): unknown[] {
  let current = values;
  for (const step of steps) current = current.flatMap((value) => apply(step, value));
  return current;
}

function apply(step: Step, value: unknown): unknown[] {
  switch (step.kind) {
    case "child":
      return isObject(value) && step.name in value ? [value[step.name]] : [];
    case "index": {
      if (!Array.isArray(value)) return [];
      const index = step.index < 0 ? value.length + step.index : step.index;
      return index >= 0 && index < value.length ? [value[index]] : [];
    }
    case "slice":
      return Array.isArray(value) ? value.slice(step.start ?? 0, step.end ?? value.length) : [];
    case "all":
      return Array.isArray(value) ? value : isObject(value) ? Object.values(value) : [];
    case "descend":
      return descendants(value).flatMap((node) =>
        step.name === undefined
          ? [node]
          : isObject(node) && step.name in node
            ? [node[step.name]]
            : [],
      );
    case "filter": {
      const items = Array.isArray(value) ? value : [value];
      return items.filter((item) => matches(step, item));
    }
  }
}

function matches(step: Extract<Step, { kind: "filter" }>, item: unknown): boolean {
  const [found] = evaluate(step.path, [item]);
  if (step.op === undefined) return found !== undefined && found !== false && found !== null;
  const { value } = step;
  switch (step.op) {
    case "==":
      return found === value;
    case "!=":
      return found !== value;
    default: {
      if (typeof found !== typeof value || (typeof found !== "number" && typeof found !== "string"))
        return false;
      const [a, b] = [found as number | string, value as number | string];
      return step.op === "<" ? a < b : step.op === ">" ? a > b : step.op === "<=" ? a <= b : a >= b;
    }
  }
}

/** Every value below `value` and itself, depth first, without recursion. */
function descendants(value: unknown): unknown[] {
  const out: unknown[] = [];
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const next = pending.pop();
    out.push(next);
    const children = Array.isArray(next) ? next : isObject(next) ? Object.values(next) : [];
    for (let index = children.length - 1; index >= 0; index--) pending.push(children[index]);
  }
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
