extension SelfConsistentField {
    /// Runs `body(job, block)` for every (spin, k) Hamiltonian block at the local potential
    /// `potential` ([nspin][N], Ha), job = spin * nk + k, threaded over the blocks (each worker
    /// takes the next block when it is done with one: `parallelJobs`). `body` runs concurrently: it
    /// must guard what it shares.
    func forEachBlock(potential: [Double], _ body: @escaping (Int, HamiltonianBlock) -> Void) {
        let nk = basis.kpoints.count
        let n = basis.gridCount
        potential.withUnsafeBufferPointer { vp in
            parallelJobs(nspin * nk, threads: threads) { [self] job, _ in
                let s = job / nk
                body(job, HamiltonianBlock(basis: basis, k: job % nk, spin: s,
                                           potential: UnsafeBufferPointer(rebasing: vp[(s * n)..<((s + 1) * n)]), terms: terms))
            }
        }
    }
}
