#!/bin/bash
# Idle cost of one VM, outside the daemon (so a QEMU or guest setting can be tried without a rebuild):
# boots the daemon's base image with the daemon's QEMU arguments (no jail), holds the agent port open,
# waits for the guest's init, lets it settle, then measures over 30 s the QEMU process's CPU (% of one
# core, from /proc/PID/stat ticks), its main-thread wakeups per second and its PSS.
#
#   bench/idle-vm.sh DATA_DIR NAME TB_SIZE_MIB "EXTRA KERNEL ARGS" [MEMORY_MIB]
# e.g. bench/idle-vm.sh /var/lib/bough tsc 64 "tsc=reliable"
set -eu
data=$1; name=$2; tb=$3; extra=$4; mem=${5:-256}
K=$data/kernel/$(cat "$data/kernel/current")
BASE=$(ls "$data"/images/base/"$(cat "$data/images/base/current")"/base.qcow2)
khz=$(awk -F: '/^cpu MHz/{printf "%d", $2*1000; exit}' /proc/cpuinfo)
d=$(mktemp -d /tmp/bough-idle-$name.XXXXXX)
trap 'kill $(cat $d/qemu.pid) $holder 2>/dev/null; rm -rf $d' EXIT
qemu-img create -q -f qcow2 -F qcow2 -b "$BASE" $d/disk.qcow2
truncate -s ${mem}M $d/memory
qemu-system-x86_64 -M microvm -accel tcg,tb-size=$tb -cpu max -m $mem -smp 1 -no-reboot -nodefaults -no-user-config -display none \
 -kernel $K/vmlinuz -initrd $K/initrd.img -append "console=ttyS0 panic=-1 quiet tsc_early_khz=$khz $extra" \
 -object memory-backend-file,id=mem,size=${mem}M,mem-path=$d/memory,share=off -machine memory-backend=mem \
 -chardev file,id=console,path=$d/console.log -serial chardev:console \
 -blockdev driver=qcow2,node-name=root,file.driver=file,file.filename=$d/disk.qcow2 -device virtio-blk-device,drive=root \
 -device virtio-serial-device -chardev socket,id=agent,path=$d/agent.sock,server=on,wait=off \
 -device virtserialport,chardev=agent,id=agent0,name=org.bough.agent -netdev user,id=n0,ipv6=off -device virtio-net-device,netdev=n0 \
 -pidfile $d/qemu.pid -daemonize
pid=$(cat $d/qemu.pid)
python3 -c "import socket,time; s=socket.socket(socket.AF_UNIX); s.connect('$d/agent.sock'); time.sleep(100000)" &
holder=$!
for i in $(seq 1 180); do grep -q BOUGH_INIT_DONE $d/console.log 2>/dev/null && break; sleep 1; done
sleep 25
w0=$(awk '/^voluntary/{print $2}' /proc/$pid/status); t0=$(awk '{print $14+$15}' /proc/$pid/stat)
sleep 30
w1=$(awk '/^voluntary/{print $2}' /proc/$pid/status); t1=$(awk '{print $14+$15}' /proc/$pid/stat)
pss=$(awk '/^Pss:/{print $2}' /proc/$pid/smaps_rollup)
echo "$name tb-size=$tb extra='$extra' boot=${i}s cpu=$(echo "scale=2; ($t1-$t0)/30" | bc)% main-thread-wakeups/s=$(( (w1-w0)/30 )) pss=$((pss/1024))MiB"
