using Bough.HostSetup;
using Bough.Images.Kernel;
using Bough.Images.Publish;

namespace Bough.Engine.Setup;

/// <summary>What the engine needs from host setup before it can boot anything.</summary>
public sealed record PreparedHost(GuestKernel Kernel, BaseImage BaseImage, AccelDecision Accel, string AgentPath);
