namespace Bough.Catalog;

/// <summary>The catalog schema cannot be brought to the version this build expects.</summary>
public sealed class CatalogSchemaException : Exception
{
    public CatalogSchemaException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>A sandbox row that was expected to exist does not.</summary>
public sealed class SandboxNotFoundException : KeyNotFoundException
{
    public SandboxNotFoundException(string id) : base($"Sandbox '{id}' is not in the catalog.") => Id = id;
    public string Id { get; }
}

/// <summary>A sandbox with this id already exists.</summary>
public sealed class SandboxAlreadyExistsException : InvalidOperationException
{
    public SandboxAlreadyExistsException(string id, Exception? inner = null)
        : base($"Sandbox '{id}' already exists in the catalog.", inner) => Id = id;
    public string Id { get; }
}
