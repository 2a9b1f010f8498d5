// Every pair of the given files, as Dolos scores them: one JSON line per pair.
// Usage: node compare.mjs <max fingerprint share or "none"> <template file or "none"> <file>...
import { Dolos } from "@dodona/dolos-lib";

const [share, template, ...files] = process.argv.slice(2);
const options = { language: "python" };
if (share !== "none") options.maxFingerprintPercentage = Number(share);
const dolos = new Dolos(options);
const report = await dolos.analyzePaths(files, template === "none" ? undefined : template);
for (const pair of report.allPairs()) {
  console.log(JSON.stringify([pair.leftFile.path, pair.rightFile.path, pair.similarity]));
}
