declare module "consistent-hash" {
	interface Options {
		range?: number;
		weight?: number;
		controlPoints?: number;
		distribution?: "random" | "uniform";
	}
	class ConsistentHash {
		constructor(options?: Options);
		add(node: unknown, weight?: number, points?: number[]): this;
		remove(node: unknown): this;
		get(key: string): unknown;
		getNodes(): unknown[];
	}
	export = ConsistentHash;
}
