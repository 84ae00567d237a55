// ChangeQueue (lock-free queue + our bound) against a mutex + condvar queue, one producer and
// one consumer, the shape of a pipeline's source -> dispatcher hand-off.
//   bench_queue [events]

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "bench/bench_common.h"
#include "pipeline/change_queue.h"

namespace searchsync::bench {
namespace {

QueuedEvent MakeItem(uint64_t seq) {
  Event event{.id = "product-" + std::to_string(seq),
              .document = {{"name", "\"a product name\""}, {"price", "12.5"}}};
  const size_t bytes = event.ByteSize();
  return {.seq = seq, .event = std::move(event), .bytes = bytes};
}

// The baseline: what a plain bounded queue with one lock looks like.
class MutexQueue {
 public:
  explicit MutexQueue(size_t capacity) : capacity_(capacity) {}
  void Push(QueuedEvent item) {
    std::unique_lock lock(mutex_);
    room_.wait(lock, [&] { return items_.size() < capacity_; });
    items_.push_back(std::move(item));
    ready_.notify_one();
  }
  size_t PopBatch(std::vector<QueuedEvent>& out, size_t max) {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return !items_.empty(); });
    size_t n = 0;
    while (n < max && !items_.empty()) {
      out.push_back(std::move(items_.front()));
      items_.pop_front();
      ++n;
    }
    room_.notify_one();
    return n;
  }

 private:
  size_t capacity_;
  std::mutex mutex_;
  std::condition_variable room_, ready_;
  std::deque<QueuedEvent> items_;
};

template <class Push, class Pop>
double RunPair(size_t events, Push push, Pop pop) {
  Stopwatch watch;
  std::thread producer([&] {
    for (uint64_t seq = 1; seq <= events; ++seq) push(MakeItem(seq));
  });
  std::vector<QueuedEvent> out;
  size_t received = 0;
  while (received < events) {
    out.clear();
    received += pop(out);
  }
  producer.join();
  return watch.Seconds();
}

}  // namespace
}  // namespace searchsync::bench

int main(int argc, char** argv) {
  using namespace searchsync;
  using namespace searchsync::bench;
  const size_t events = argc > 1 ? std::stoul(argv[1]) : 2'000'000;
  const size_t item_bytes = MakeItem(1).bytes;
  PrintHeader("bench_queue", std::to_string(events) + " events, bound 100000", 0);
  {
    ChangeQueue queue(100'000, 64 << 20);
    const double seconds = RunPair(
        events, [&](QueuedEvent item) { queue.Push(std::move(item)); },
        [&](std::vector<QueuedEvent>& out) {
          return queue.PopBatch(out, 256, std::chrono::milliseconds(50));
        });
    Report("change_queue (moodycamel)", events, events * item_bytes, seconds);
  }
  {
    MutexQueue queue(100'000);
    const double seconds = RunPair(
        events, [&](QueuedEvent item) { queue.Push(std::move(item)); },
        [&](std::vector<QueuedEvent>& out) { return queue.PopBatch(out, 256); });
    Report("mutex + condvar baseline", events, events * item_bytes, seconds);
  }
}
