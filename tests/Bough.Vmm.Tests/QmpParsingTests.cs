using System.Text.Json;

namespace Bough.Vmm.Tests;

/// <summary>Typed QMP replies and events from JSON as QEMU 7.2 writes it (no QEMU needed).</summary>
public sealed class QmpParsingTests
{
    /// <summary>query-block of a microvm with a three-image chain (top → mid → base), as QEMU 7.2.22 answered it.</summary>
    private const string QueryBlockChain = """
        [{"io-status": "ok", "device": "disk0", "locked": false, "removable": false, "inserted": {"iops_rd": 0, "detect_zeroes": "off",
          "image": {"backing-image": {"backing-image": {"virtual-size": 67108864, "filename": "/tmp/vmmx/base.qcow2", "cluster-size": 65536,
          "format": "qcow2", "actual-size": 200704, "dirty-flag": false}, "backing-filename-format": "qcow2", "virtual-size": 67108864,
          "filename": "/tmp/vmmx/mid.qcow2", "cluster-size": 65536, "format": "qcow2", "actual-size": 200704,
          "full-backing-filename": "/tmp/vmmx/base.qcow2", "backing-filename": "/tmp/vmmx/base.qcow2", "dirty-flag": false},
          "backing-filename-format": "qcow2", "virtual-size": 67108864, "filename": "/tmp/vmmx/top.qcow2", "cluster-size": 65536,
          "format": "qcow2", "actual-size": 200704, "full-backing-filename": "/tmp/vmmx/mid.qcow2", "backing-filename": "/tmp/vmmx/mid.qcow2",
          "dirty-flag": false}, "iops_wr": 0, "ro": false, "node-name": "#block127", "backing_file_depth": 2, "drv": "qcow2", "iops": 0,
          "bps_wr": 0, "write_threshold": 0, "backing_file": "/tmp/vmmx/mid.qcow2", "encrypted": false, "bps": 0, "bps_rd": 0,
          "cache": {"no-flush": false, "direct": false, "writeback": true}, "file": "/tmp/vmmx/top.qcow2"}, "qdev": "blk0", "type": "unknown"}]
        """;

    private static JsonElement Json(string text)
    {
        using var doc = JsonDocument.Parse(text);
        return doc.RootElement.Clone();
    }

    [Fact]
    public void Query_block_gives_device_node_top_file_size_and_backing_chain()
    {
        var d = Assert.Single(BlockDeviceInfo.ParseList(Json(QueryBlockChain)));
        Assert.Equal("disk0", d.Device);
        Assert.Equal("blk0", d.QdevId);
        Assert.Equal("#block127", d.NodeName);
        Assert.Equal("/tmp/vmmx/top.qcow2", d.File);
        Assert.Equal(64L << 20, d.VirtualSize);
        Assert.Equal(["/tmp/vmmx/mid.qcow2", "/tmp/vmmx/base.qcow2"], d.BackingChain);
        Assert.True(d.IsInserted);
    }

    [Fact]
    public void Query_block_turns_json_pseudo_filenames_into_plain_paths()
    {
        // After change-backing-file, QEMU names the node by a json: pseudo-filename (its header no longer
        // matches the attached backing node).
        const string pseudo = """json:{\"backing\": {\"driver\": \"qcow2\", \"file\": {\"driver\": \"file\", \"filename\": \"/s/1/disk.qcow2\"}}, \"driver\": \"qcow2\", \"file\": {\"driver\": \"file\", \"filename\": \"/r/disk-2.qcow2\"}}""";
        string json = """
            [{"device": "", "qdev": "/machine/peripheral/blk0/virtio-backend", "inserted": {"node-name": "snapabc", "file": "PSEUDO",
              "image": {"filename": "PSEUDO", "virtual-size": 1073741824,
                        "backing-image": {"filename": "/s/1/disk.qcow2", "virtual-size": 1073741824}}}}]
            """.Replace("PSEUDO", pseudo, StringComparison.Ordinal);
        var d = Assert.Single(BlockDeviceInfo.ParseList(Json(json)));
        Assert.Equal("/r/disk-2.qcow2", d.File);
        Assert.Equal("snapabc", d.NodeName);
        Assert.Equal(["/s/1/disk.qcow2"], d.BackingChain);
        Assert.Equal("", d.Device);
    }

    [Fact]
    public void Query_block_device_without_medium_is_not_inserted_and_active_disk_skips_it()
    {
        const string json = """
            [{"device": "cd0", "locked": false, "removable": true, "type": "unknown"},
             {"device": "disk0", "inserted": {"node-name": "n1", "file": "/d/disk.qcow2", "image": {"filename": "/d/disk.qcow2", "virtual-size": 4096}}}]
            """;
        var list = BlockDeviceInfo.ParseList(Json(json));
        Assert.Equal(2, list.Count);
        Assert.False(list[0].IsInserted);
        Assert.Null(list[0].File);
        Assert.Null(list[0].NodeName);
        Assert.Empty(list[0].BackingChain);
        Assert.Equal("/d/disk.qcow2", list.First(d => d.IsInserted).File);
        Assert.Empty(list[1].BackingChain);
    }

    [Fact]
    public void Query_block_rejects_a_reply_that_is_not_an_array() =>
        Assert.Throws<InvalidDataException>(() => BlockDeviceInfo.ParseList(Json("""{"device": "x"}""")));

    [Theory]
    [InlineData("""{"status": "running", "singlestep": false, "running": true}""", true, "running")]
    [InlineData("""{"status": "paused", "singlestep": false, "running": false}""", false, "paused")]
    [InlineData("""{"status": "prelaunch", "singlestep": false, "running": false}""", false, "prelaunch")]
    public void Query_status_parses(string json, bool running, string status) =>
        Assert.Equal(new QmpRunStatus(running, status), QmpCommands.ParseRunStatus(Json(json)));

    [Fact]
    public void Query_status_without_running_flag_is_rejected() =>
        Assert.Throws<InvalidDataException>(() => QmpCommands.ParseRunStatus(Json("""{"status": "running"}""")));

    private static QmpEvent Event(string name, string? data) =>
        new(name, data is null ? null : Json(data), DateTimeOffset.UnixEpoch);

    [Fact]
    public void Vserport_change_is_read_with_its_port_and_state()
    {
        Assert.True(Event("VSERPORT_CHANGE", """{"open": false, "id": "agent0"}""").TryGetVserportChange(out string id, out bool open));
        Assert.Equal("agent0", id);
        Assert.False(open);
        Assert.True(Event("VSERPORT_CHANGE", """{"open": true, "id": "agent0"}""").TryGetVserportChange(out _, out open));
        Assert.True(open);
    }

    [Theory]
    [InlineData("STOP", null)]
    [InlineData("VSERPORT_CHANGE", null)]
    [InlineData("VSERPORT_CHANGE", """{"id": "agent0"}""")]
    [InlineData("VSERPORT_CHANGE", """{"open": "no", "id": "agent0"}""")]
    [InlineData("VSERPORT_CHANGE", """{"open": false, "id": 3}""")]
    [InlineData("MIGRATION", """{"open": false, "id": "agent0"}""")]
    public void Other_or_malformed_events_are_not_vserport_changes(string name, string? data)
    {
        Assert.False(Event(name, data).TryGetVserportChange(out string id, out bool open));
        Assert.Equal("", id);
        Assert.False(open);
    }

    [Fact]
    public void Migration_event_status_is_read()
    {
        Assert.True(Event("MIGRATION", """{"status": "completed"}""").TryGetMigrationStatus(out string status));
        Assert.Equal("completed", status);
        Assert.False(Event("STOP", null).TryGetMigrationStatus(out _));
        Assert.False(Event("MIGRATION", "{}").TryGetMigrationStatus(out _));
    }

    [Fact]
    public void Qemu_img_info_chain_parses_top_first()
    {
        const string json = """
            [{"virtual-size": 1048576, "filename": "/t/top.qcow2", "format": "qcow2", "full-backing-filename": "/t/base.qcow2",
              "backing-filename": "base.qcow2", "backing-filename-format": "qcow2"},
             {"virtual-size": 1048576, "filename": "/t/base.qcow2", "format": "raw"}]
            """;
        var chain = QemuImg.ParseInfoChain(json);
        Assert.Equal(new QemuImageInfo("/t/top.qcow2", "qcow2", 1048576, "/t/base.qcow2"), chain[0]);
        Assert.Equal(new QemuImageInfo("/t/base.qcow2", "raw", 1048576, null), chain[1]);
    }
}
