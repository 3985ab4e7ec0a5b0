/**
 * The zip container torch writes (`torch.save` since 1.6): directory, member reads and
 * CRC verification. Implementation lives in ./zip/, one concern per file.
 */
export { readZipDirectory, type ZipDirectory } from "./zip/directory.js";
export { readMember } from "./zip/read-member.js";
export { verifyMemberCrcs, type VerifyCrcOptions } from "./zip/verify-crcs.js";
export { CrcPool } from "./zip/crc-pool.js";
