// Producers and consumers on a bounded queue with two condition variables:
// 2 producers put 1..N each, 3 consumers take until they get a 0 (one per
// consumer, put after the producers are joined) and sum what they took.
#include <pthread.h>
#include <stdio.h>

enum { kCapacity = 8, kProducers = 2, kConsumers = 3, kItems = 5000 };

static int queue[kCapacity];
static int head, count;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;

static void put(int value) {
  pthread_mutex_lock(&lock);
  while (count == kCapacity) pthread_cond_wait(&not_full, &lock);
  queue[(head + count) % kCapacity] = value;
  ++count;
  pthread_cond_signal(&not_empty);
  pthread_mutex_unlock(&lock);
}

static int take(void) {
  pthread_mutex_lock(&lock);
  while (count == 0) pthread_cond_wait(&not_empty, &lock);
  int value = queue[head];
  head = (head + 1) % kCapacity;
  --count;
  pthread_cond_signal(&not_full);
  pthread_mutex_unlock(&lock);
  return value;
}

static void* produce(void* arg) {
  (void)arg;
  for (int i = 1; i <= kItems; ++i) put(i);
  return NULL;
}

struct Taken {
  long long sum;
  int items;
};

static void* consume(void* arg) {
  struct Taken* taken = arg;
  for (int v; (v = take()) != 0;) {
    taken->sum += v;
    ++taken->items;
  }
  return NULL;
}

int main(void) {
  pthread_t producers[kProducers], consumers[kConsumers];
  struct Taken taken[kConsumers] = {{0, 0}};
  for (int i = 0; i < kConsumers; ++i)
    if (pthread_create(&consumers[i], NULL, consume, &taken[i]) != 0) return 1;
  for (int i = 0; i < kProducers; ++i)
    if (pthread_create(&producers[i], NULL, produce, NULL) != 0) return 1;
  for (int i = 0; i < kProducers; ++i) pthread_join(producers[i], NULL);
  for (int i = 0; i < kConsumers; ++i) put(0);
  long long sum = 0;
  int items = 0;
  for (int i = 0; i < kConsumers; ++i) {
    pthread_join(consumers[i], NULL);
    sum += taken[i].sum;
    items += taken[i].items;
  }
  printf("consumed %d items, sum %lld\n", items, sum);
  return 0;
}
