# frozen_string_literal: true

require "zlib"

module Kp
  # Key hashing for produce(partition_key:), which picks the partition in Ruby
  # (as rdkafka-ruby does through librdkafka's partitioner functions) by the
  # producer's configured partitioner.
  module Partitioner
    MASK32 = 0xffff_ffff

    module_function

    # Partition of `key` (a String) among `count` partitions for the partitioner
    # named `name`, as librdkafka computes it: consistent* -> CRC32 % count,
    # murmur2* -> (murmur2 & 0x7fffffff) % count (the Java producer's placement).
    # random/round_robin have no key placement: nil (kp then chooses).
    def partition_for(name, key, count)
      case name
      when "consistent", "consistent_random" then Zlib.crc32(key) % count
      when "murmur2", "murmur2_random" then (murmur2(key) & 0x7fff_ffff) % count
      end
    end

    # Kafka's murmur2 (seed 0x9747b28c), as org.apache.kafka.common.utils.Utils.murmur2,
    # returned as an unsigned 32-bit Integer.
    def murmur2(data)
      m = 0x5bd1_e995
      len = data.bytesize
      h = (0x9747_b28c ^ len) & MASK32
      words = len / 4
      data.unpack("V#{words}").each do |k|
        k = (k * m) & MASK32
        k ^= k >> 24
        k = (k * m) & MASK32
        h = (h * m) & MASK32
        h ^= k
      end
      tail = data.byteslice(words * 4, len & 3).bytes
      h ^= tail[2] << 16 if tail.size >= 3
      h ^= tail[1] << 8 if tail.size >= 2
      if tail.size >= 1
        h ^= tail[0]
        h = (h * m) & MASK32
      end
      h ^= h >> 13
      h = (h * m) & MASK32
      h ^ (h >> 15)
    end
  end
end
