import { kvConformance } from "../../test/support/kv-conformance.js";
import { MemoryKv } from "./memory-kv.js";

kvConformance("MemoryKv", () => new MemoryKv());
