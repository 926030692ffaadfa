extension SelfConsistentField {
    /// Runs `body(job, block)` for every (spin, k) Hamiltonian block at the local potential
    /// `potential` ([nspin][N], Ha), job = spin * nk + k, threaded over the blocks (worker w takes
    /// jobs w, w + workers, ...). `body` runs concurrently: it must guard what it shares.
    func forEachBlock(potential: [Double], _ body: @escaping (Int, HamiltonianBlock) -> Void) {
        let nk = basis.kpoints.count
        let n = basis.gridCount
        let jobs = nspin * nk
        potential.withUnsafeBufferPointer { vp in
            let workers = min(threads, jobs)
            parallelWorkers(workers) { [self] worker in
                var job = worker
                while job < jobs {
                    let s = job / nk
                    body(job, HamiltonianBlock(basis: basis, k: job % nk, spin: s,
                                               potential: UnsafeBufferPointer(rebasing: vp[(s * n)..<((s + 1) * n)]), terms: terms))
                    job += workers
                }
            }
        }
    }
}
