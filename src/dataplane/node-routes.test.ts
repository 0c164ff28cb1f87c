import { describe, expect, it } from "vitest";
import { diffByKey, renderRouteChanges, routeKey, type FloatingRoute } from "./floating-routes.js";

const route = (floating: string, hostIfname: string): FloatingRoute => ({
  family: floating.includes(":") ? 6 : 4,
  floating,
  hostIfname,
});

describe("floating-IP routes", () => {
  it("renderRouteChanges() deletes before it adds, with buoy's protocol", () => {
    expect(
      renderRouteChanges(
        [route("10.96.0.1", "calib")],
        [route("10.96.0.1", "calia"), route("fd00::1", "calia")],
      ),
    ).toBe(
      "route del 10.96.0.1/32 dev calia proto 202\n" +
        "route del fd00::1/128 dev calia proto 202\n" +
        "route replace 10.96.0.1/32 dev calib proto 202\n",
    );
  });
  it("renderRouteChanges() is empty when nothing changes", () => {
    expect(renderRouteChanges([], [])).toBe("");
  });
  it("diffByKey() sees a move to another interface as one removal and one addition", () => {
    const { added, removed } = diffByKey(
      [route("10.96.0.1", "calib"), route("10.96.0.2", "calic")],
      [route("10.96.0.1", "calia"), route("10.96.0.2", "calic")],
      routeKey,
    );
    expect(added).toEqual([route("10.96.0.1", "calib")]);
    expect(removed).toEqual([route("10.96.0.1", "calia")]);
  });
});
