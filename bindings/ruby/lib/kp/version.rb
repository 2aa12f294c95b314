# frozen_string_literal: true

module Kp
  VERSION = "0.1.0"
end
