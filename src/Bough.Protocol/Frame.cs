using System.Buffers.Binary;

namespace Bough.Protocol;

/// <summary>A decoded frame header. Layout (little-endian): magic[4] version[1] type[1] flags[2] stream[4] length[4].</summary>
public readonly record struct FrameHeader(FrameType Type, ushort Flags, uint StreamId, int Length)
{
    public void Write(Span<byte> destination)
    {
        ProtocolConstants.Magic.CopyTo(destination);
        destination[4] = ProtocolConstants.Version;
        destination[5] = (byte)Type;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[6..], Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], StreamId);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], (uint)Length);
    }

    /// <summary>
    /// Parses and validates a header. Returns an error text instead of throwing so that the handshake
    /// scanner can treat a bad candidate as junk while the strict reader turns it into a violation.
    /// </summary>
    public static string? TryParse(ReadOnlySpan<byte> source, out FrameHeader header)
    {
        header = default;
        if (!source[..4].SequenceEqual(ProtocolConstants.Magic)) return "bad magic";
        if (source[4] != ProtocolConstants.Version) return $"unsupported framing version {source[4]}";
        var type = (FrameType)source[5];
        if (type is < FrameType.Hello or > FrameType.GoAway) return $"unknown frame type {source[5]}";
        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(source[6..]);
        uint stream = BinaryPrimitives.ReadUInt32LittleEndian(source[8..]);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(source[12..]);
        if (length > ProtocolConstants.MaxPayload) return $"payload length {length} exceeds {ProtocolConstants.MaxPayload}";
        if (type == FrameType.Data)
        {
            if (flags > (ushort)DataChannel.Stderr) return $"invalid DATA flags 0x{flags:x}";
            if (length > ProtocolConstants.MaxDataChunk) return $"DATA chunk of {length} bytes exceeds {ProtocolConstants.MaxDataChunk}";
        }
        else if (flags != 0) return $"reserved flags 0x{flags:x} set on {type}";
        if (type == FrameType.Reply && length > ProtocolConstants.MaxReplyPayload) return $"REPLY of {length} bytes exceeds {ProtocolConstants.MaxReplyPayload}";
        if (type == FrameType.Window && length != 4) return "WINDOW payload must be 4 bytes";
        if (type is FrameType.Eof or FrameType.Cancel && length != 0) return $"{type} must have an empty payload";
        bool connectionLevel = type is FrameType.Hello or FrameType.HelloAck or FrameType.GoAway;
        if (connectionLevel != (stream == 0)) return connectionLevel ? $"{type} must use stream 0" : $"{type} must not use stream 0";
        header = new FrameHeader(type, flags, stream, (int)length);
        return null;
    }
}

/// <summary>One complete frame. The payload array is owned by the receiver.</summary>
public readonly record struct Frame(FrameHeader Header, byte[] Payload)
{
    public FrameType Type => Header.Type;
    public uint StreamId => Header.StreamId;
    public ushort Flags => Header.Flags;

    /// <summary>Reads the WINDOW increment.</summary>
    public uint WindowIncrement => BinaryPrimitives.ReadUInt32LittleEndian(Payload);
}
