"""The socket's token bucket (realtime/ratelimit.py), on a clock the test moves."""

from realtime.ratelimit import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _taken(bucket: TokenBucket, attempts: int) -> int:
    return sum(bucket.take() for _ in range(attempts))


def test_a_fresh_bucket_allows_one_burst():
    bucket = TokenBucket(rate_per_second=2, burst=5, clock=Clock())

    assert _taken(bucket, 10) == 5


def test_after_a_long_idle_the_bucket_holds_one_burst_and_no_more():
    clock = Clock()
    bucket = TokenBucket(rate_per_second=2, burst=5, clock=clock)
    assert _taken(bucket, 5) == 5

    clock.now += 3600  # an hour idle would be 7,200 tokens at the sustained rate

    assert _taken(bucket, 20) == 5


def test_the_bucket_refills_at_the_sustained_rate():
    clock = Clock()
    bucket = TokenBucket(rate_per_second=2, burst=5, clock=clock)
    assert _taken(bucket, 5) == 5

    clock.now += 1.5

    assert _taken(bucket, 10) == 3
