#if canImport(Glibc)
import Glibc
#endif

/// Runs `body(worker)` for worker = 0..<threads on POSIX threads with large stacks (LAPACK and
/// OpenBLAS need more stack than libdispatch's worker threads have), and waits for all.
/// Worker 0 runs on the calling thread.
func parallelWorkers(_ threads: Int, _ body: @escaping (Int) -> Void) {
    if threads <= 1 {
        body(0)
        return
    }
    final class Box {
        let body: (Int) -> Void
        let worker: Int
        init(_ body: @escaping (Int) -> Void, _ worker: Int) {
            self.body = body
            self.worker = worker
        }
    }
    var ids: [pthread_t] = []
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    pthread_attr_setstacksize(&attributes, 64 << 20)
    var started: [Int] = []
    for w in 1..<threads {
        let box = Unmanaged.passRetained(Box(body, w)).toOpaque()
        var id = pthread_t()
        let rc = pthread_create(&id, &attributes, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body(box.worker)
            return nil
        }, box)
        if rc == 0 {
            ids.append(id)
        } else {
            // Could not start a thread: run its share here.
            Unmanaged<Box>.fromOpaque(box).release()
            started.append(w)
        }
    }
    pthread_attr_destroy(&attributes)
    body(0)
    for w in started { body(w) }
    for id in ids { pthread_join(id, nil) }
}

/// Runs `body(job, worker)` for job = 0..<jobs on `threads` workers, each taking the next job as it
/// finishes one (blocks differ in cost: their eigensolver iterations, occupied bands, plane
/// waves), so no worker idles while another still has a queue. What a job computes must not
/// depend on the worker that runs it; results are then the same bits for any thread count.
func parallelJobs(_ jobs: Int, threads: Int, _ body: @escaping (_ job: Int, _ worker: Int) -> Void) {
    final class Queue {
        let lock = Lock()
        var next = 0
        func take() -> Int { lock.withLock { defer { next += 1 }; return next } }
    }
    let queue = Queue()
    parallelWorkers(max(1, min(threads, jobs))) { worker in
        while true {
            let job = queue.take()
            if job >= jobs { return }
            body(job, worker)
        }
    }
}
