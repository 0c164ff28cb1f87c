import { describe, expect, it } from "vitest";
import { renderTable } from "./table.js";

describe("renderTable()", () => {
  const cases: { desc: string; headers: string[]; rows: string[][]; want: string }[] = [
    {
      desc: "aligns columns to the widest cell with two spaces between them",
      headers: ["NAME", "CIDR"],
      rows: [
        ["a", "10.0.0.0/24"],
        ["floating-v4", "fd00::/64"],
      ],
      want: "NAME         CIDR\na            10.0.0.0/24\nfloating-v4  fd00::/64\n",
    },
    {
      desc: "prints only the headers when there are no rows",
      headers: ["NAME", "CIDR", "SELECTOR"],
      rows: [],
      want: "NAME  CIDR  SELECTOR\n",
    },
    {
      desc: "leaves no trailing blanks after an empty last cell",
      headers: ["NAME", "ASN"],
      rows: [["node-1", ""]],
      want: "NAME    ASN\nnode-1\n",
    },
  ];
  for (const { desc, headers, rows, want } of cases) {
    it(`renderTable() ${desc}`, () => {
      expect(renderTable(headers, rows)).toBe(want);
    });
  }
});
