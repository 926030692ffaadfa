#if canImport(Glibc)
import Glibc
#endif
import CSolidXCDeps

/// glibc's malloc, tuned once per process for the SCF's allocation pattern.
///
/// The eigensolver and the response solver allocate and free arrays of a few hundred KiB to a few
/// MiB many times per second. With glibc's defaults each one is mapped fresh from the kernel (or
/// the heap top is trimmed and regrown), so every first touch is a page fault: 443 000 faults
/// and about 10 % of the profile on the graphene benchmark, 1.6 million on Ni. With an mmap
/// threshold of 64 MiB and a trim threshold of 128 MiB, freed blocks are reused instead: 22 000
/// and 34 000 faults. The memory kept is below the peak; fragmentation moved the peak resident
/// memory by about 1 MB either way on the benchmark cases.
///
/// The settings apply to the whole process (they are glibc's, not ours): arrays of 64 MiB or more
/// are still mapped and returned at once, and at most 128 MiB of free heap is kept. They are left
/// alone when the user chose any of glibc's MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_,
/// MALLOC_TOP_PAD_ or MALLOC_MMAP_MAX_, or set SOLIDXC_DEFAULT_MALLOC=1.
enum MallocTuning {
    static let mmapThreshold: Int32 = 64 << 20
    static let trimThreshold: Int32 = 128 << 20

    /// Whether the settings were applied (evaluated once, on first use).
    static let applied: Bool = {
        #if canImport(Glibc)
        let chosen = ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_",
                      "SOLIDXC_DEFAULT_MALLOC"]
        if chosen.contains(where: { getenv($0) != nil }) { return false }
        return mallopt(M_MMAP_THRESHOLD, mmapThreshold) == 1 && mallopt(M_TRIM_THRESHOLD, trimThreshold) == 1
        #else
        return false
        #endif
    }()

    /// With the settings applied, hands the whole free pages inside the heap back to the kernel
    /// (malloc_trim). Called once per SCF step: the holes the previous step's arrays left are
    /// then not resident when the next step starts, so the peak is one step's working set plus
    /// what is kept, not the heap's whole extent (graphene benchmark: peak 79.6 -> 78.8 MiB,
    /// page faults 22 000 -> 65 000, both far below glibc's defaults). Only when the heap holds
    /// more than `trimFreeBytes` free: below that the pages would be faulted in again at the
    /// next step for little gain (Al 4x4x4, 2.7 MiB free: the trim cost 2 ms a step, 5 % of the
    /// SCF; graphene holds about 14 MiB free and is trimmed).
    static func releaseFreePages() {
        #if canImport(Glibc)
        if applied && mallinfo2().fordblks > trimFreeBytes { _ = malloc_trim(0) }
        #endif
    }
    static let trimFreeBytes = 8 << 20
}
