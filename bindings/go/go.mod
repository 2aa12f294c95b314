module kp.dev/kp

go 1.19
