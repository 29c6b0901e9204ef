[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("Bough.Agent.Tests")]
